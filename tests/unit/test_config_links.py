"""node.yaml keys of the link lifecycle: expected_children as ids or {id, name}, and
server.enrollment_listen (default: the port after listen's; "" off)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.config import ExpectedChild, load_config, render_config
from node.errors import ConfigError

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7464")


def test_expected_children_take_ids_and_named_mappings(tmp_path: Path) -> None:
    """Plain ids and {id, name} mix; expected_children stays the tuple of ids."""
    config = load_config(
        _write(
            tmp_path,
            RENDERED.replace(
                "expected_children: []",
                "expected_children:\n  - id-64-01\n"
                '  - {id: id-64-02, name: "Kabupaten Kutai Kartanegara"}\n',
            ),
        )
    )
    assert config.expected_children == ("id-64-01", "id-64-02")
    assert config.expected == (
        ExpectedChild("id-64-01"),  # type: ignore[arg-type]
        ExpectedChild("id-64-02", "Kabupaten Kutai Kartanegara"),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("children", "message"),
    [
        pytest.param("[id-64-02, id-64-02]", "id-64-02 is listed twice", id="duplicate"),
        pytest.param(
            "[{id: id-64-02, nama: X}]", "unknown key(s) in 'expected_children[0]'", id="key"
        ),
        pytest.param("[{name: X}]", "invalid node id", id="no-id"),
        pytest.param('[{id: id-64-02, name: ""}]', "expected_children[0].name", id="empty-name"),
        pytest.param("id-64-02", "must be a list of node ids or", id="not-a-list"),
    ],
)
def test_bad_expected_children_are_refused(tmp_path: Path, children: str, message: str) -> None:
    """Each malformed expected_children names the entry and what is expected."""
    text = RENDERED.replace("expected_children: []", f"expected_children: {children}")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("line", "address"),
    [
        pytest.param(None, "127.0.0.1:7465", id="default-next-port"),
        pytest.param('enrollment_listen: ""', "", id="off"),
        pytest.param('enrollment_listen: "0.0.0.0:9465"', "0.0.0.0:9465", id="explicit"),
    ],
)
def test_enrollment_listen(tmp_path: Path, line: str | None, address: str) -> None:
    """The enrollment port defaults to the one after server.listen's; "" turns it off."""
    text = (
        RENDERED
        if line is None
        else RENDERED.replace('listen: "127.0.0.1:7464"', f'listen: "127.0.0.1:7464"\n  {line}')
    )
    assert load_config(_write(tmp_path, text)).server.enrollment_address == address


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param('"7465"', "must be HOST:PORT", id="no-host"),
        pytest.param("7465", "must be HOST:PORT", id="number"),
        pytest.param('"127.0.0.1:7464"', "must differ from server.listen", id="same-port"),
    ],
)
def test_bad_enrollment_listen_is_refused(tmp_path: Path, value: str, message: str) -> None:
    """A malformed enrollment_listen, or the same address as listen, is refused."""
    text = RENDERED.replace(
        'listen: "127.0.0.1:7464"', f'listen: "127.0.0.1:7464"\n  enrollment_listen: {value}'
    )
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path
