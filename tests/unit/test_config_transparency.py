"""node.yaml's `transparency` section (the ledger as C2SP tlog-tiles): off by default, its
commented example loads once uncommented, and a bad value is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import load_config, render_config
from node.errors import ConfigError

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")


def test_the_tiles_endpoint_is_off_by_default(tmp_path: Path) -> None:
    """The rendered node.yaml serves no tiles until transparency.listen is set."""
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED)
    config = load_config(path)
    assert not config.transparency.enabled
    assert config.transparency.tls is False


def test_the_commented_example_loads_once_uncommented(tmp_path: Path) -> None:
    """Uncommenting the example turns the endpoint on, on plain HTTP."""
    start = RENDERED.index("# transparency:")
    block = RENDERED[start:].split("\n\n")[0]
    text = RENDERED + "\n".join(line.removeprefix("# ") for line in block.splitlines()) + "\n"
    path = tmp_path / "node.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.transparency.address == ("127.0.0.1", 7490)
    assert config.transparency.tls is False


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            'transparency:\n  listen: "127.0.0.1"\n',
            "node.yaml: transparency.listen must be HOST:PORT (e.g. 127.0.0.1:7490), "
            "found '127.0.0.1'",
            id="no-port",
        ),
        pytest.param(
            'transparency:\n  listen: "127.0.0.1:7490"\n  tls: "yes"\n',
            "transparency.tls",
            id="tls-not-a-boolean",
        ),
        pytest.param(
            'transparency:\n  listen: "127.0.0.1:7490"\n  token: "x"\n',
            "transparency",
            id="unknown-key",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, section: str, message: str) -> None:
    """A listen without a port, a tls that is not a boolean, an unknown key: refused."""
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED + section)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
