"""node.yaml texts the config fuzzer (fuzz/node_yaml.py) found crashing the loader: each is
now a ConfigError with one line per problem, naming the file and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import load_config, render_config
from node.errors import ConfigError

RENDERED = render_config("id-64", "Provinsi Kalimantan Timur", listen="127.0.0.1:7411")


def _refusal(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "node.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            RENDERED.encode().replace(b"Provinsi", b"Prov\xffinsi"),
            "is not UTF-8 text (byte ",
            id="not-utf8",
        ),
        pytest.param(
            RENDERED.encode().replace(b"Provinsi", b"Prov\x1binsi"),
            "is not valid YAML: unacceptable character #x001b",
            id="control-character",
        ),
        pytest.param(
            RENDERED.encode() + b'\nextra: "unterminated\n',
            "is not valid YAML: while scanning a quoted scalar found unexpected end of stream",
            id="unterminated-quote",
        ),
        pytest.param(
            RENDERED.encode() + b"\nextra: &a [*a]\n",
            ") contains itself through an alias; write the value out instead",
            id="recursive-alias",
        ),
        pytest.param(
            RENDERED.encode() + b"\nextra: " + b"{a: " * 999 + b"1" + b"}" * 999 + b"\n",
            "nests its values too deeply to read",
            id="nested-past-python-s-recursion",
        ),
        pytest.param(
            RENDERED.encode() + b"\nextra: " + b"[" * 5000 + b"\n",
            "nest",  # libyaml: "exceeded maximum nesting depth"; pure-Python PyYAML: ours
            id="nested-past-the-parser-s-limit",
        ),
        pytest.param(
            RENDERED.encode() + b'\n"bad\\nkey": 1\n',
            "unknown section(s): 'bad\\nkey'",
            id="key-with-a-line-break",
        ),
    ],
)
def test_bad_text_is_one_line_naming_the_problem(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    """Non-UTF-8 bytes, characters YAML refuses, broken syntax, an alias inside its own
    anchor and a key holding a line break: one line, no traceback, no PyYAML trace."""
    message = _refusal(tmp_path, data)
    assert "\n" not in message, message
    assert expected in message, message


def test_a_yaml_error_names_line_and_column(tmp_path: Path) -> None:
    """PyYAML's multi-line trace becomes 'at line L, column C'."""
    message = _refusal(tmp_path, b"node:\n  id: [\n")
    assert message.endswith("at line 3, column 1"), message


def test_aliases_of_aliases_are_checked_once(tmp_path: Path) -> None:
    """A billion-laughs shape is refused by the schema quickly, not walked exponentially by
    the duplicate-key check."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    message = _refusal(tmp_path, (RENDERED + "\n" + "\n".join(lines) + "\n").encode())
    assert message.startswith("node.yaml: unknown section(s): a0, a1"), message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  refuse_after: 0", "node.yaml: throttle.refuse_after must be positive, found 0"),
        ("  delay_seconds: -1", "node.yaml: throttle.delay_seconds must be positive, found -1"),
        ("  max_sources: many", "node.yaml: throttle.max_sources must be int, found 'many'"),
    ],
)
def test_throttle_values_are_checked(tmp_path: Path, line: str, expected: str) -> None:
    """The throttle section's keys must be positive numbers."""
    key = line.split(":")[0]
    lines = [line if row.startswith(key + ":") else row for row in RENDERED.splitlines()]
    assert line in lines
    assert _refusal(tmp_path, "\n".join(lines).encode()) == expected


def test_throttle_keys_reach_the_config(tmp_path: Path) -> None:
    """A node.yaml's throttle section becomes NodeConfig.throttle."""
    path = tmp_path / "node.yaml"
    path.write_text(RENDERED.replace("  refuse_after: 20", "  refuse_after: 7"))
    assert load_config(path).throttle.refuse_after == 7
