"""The `witness:` section of node.yaml (decision 0026): defaults, a full section, and
refusals in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.config import load_config, render_config
from node.config.model import WitnessConfig
from node.errors import ConfigError
from node.ledger.cosignature import CosignerKey
from node.ledger.note import Verifier

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7464")
KEY = Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32).public_key()
COSIGNER = CosignerKey.from_public_key("ombudsman.go.id/w1", KEY).vkey
LOG = Verifier.from_public_key("example.org/log", KEY).vkey


def _load(tmp_path: Path, section: str) -> WitnessConfig:
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED + section)
    return load_config(path).witness


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED)
    return path


def test_defaults_witness_the_peers_and_submit_nowhere(tmp_path: Path) -> None:
    """Without the section: the key beside the others, peers witnessed, no witnesses asked."""
    witness = load_config(_write(tmp_path)).witness
    assert witness.key == tmp_path / "keys" / "witness.pem"
    assert witness.witness_peers and witness.logs == () and witness.submit_to == ()


def test_full_section(tmp_path: Path) -> None:
    """Every key is read; the example in the rendered node.yaml is the shape documented."""
    witness = _load(
        tmp_path,
        "\nwitness:\n  cosigner_key: keys/w.pem\n  witness_peers: false\n"
        f'  logs:\n    - {{origin: "example.org/log", vkey: "{LOG}"}}\n'
        f'  submit_to:\n    - {{name: ombudsman, vkey: "{COSIGNER}", url: "https://w.example"}}\n'
        "  submit_interval_seconds: 5\n",
    )
    assert witness.key == tmp_path / "keys" / "w.pem"
    assert not witness.witness_peers
    assert witness.logs[0].origin == "example.org/log"
    assert witness.submit_to[0].url == "https://w.example"
    assert witness.submit_interval_seconds == 5


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            f'  submit_to:\n    - {{name: a, vkey: "{LOG}", url: "https://w.example"}}\n',
            "type 0x04",
            id="log-key-as-witness",
        ),
        pytest.param(
            f'  submit_to:\n    - {{name: a, vkey: "{COSIGNER}", url: "ftp://w.example"}}\n',
            "http",
            id="url-scheme",
        ),
        pytest.param(
            f'  logs:\n    - {{origin: "example.org/log", vkey: "{COSIGNER}"}}\n',
            "not a note verifier key",
            id="cosigner-key-as-log",
        ),
        pytest.param(
            f'  submit_to:\n    - {{name: a, vkey: "{COSIGNER}", url: "https://x"}}\n'
            f'    - {{name: a, vkey: "{COSIGNER}", url: "https://y"}}\n',
            "twice",
            id="duplicate-name",
        ),
        pytest.param("  submit_interval_seconds: 0\n", "must be positive", id="interval"),
    ],
)
def test_bad_sections_are_refused(tmp_path: Path, section: str, message: str) -> None:
    """A bad witness section stops loading with one line that names the problem."""
    with pytest.raises(ConfigError, match=message) as info:
        _load(tmp_path, "\nwitness:\n" + section)
    assert "\n" not in str(info.value).strip()
