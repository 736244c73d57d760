"""The JSON lines of the audit formats: writing one, and reading typed fields from one.

Invariants: a written line is compact JSON (no spaces, non-ASCII kept) ending in a
newline, bytes are standard base64 with padding; a read field is of the expected type or
the reader raises ValidationError naming the field (never another exception type).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from node.errors import ValidationError

__all__ = ["b64", "line", "read_bytes", "read_int", "read_str"]


def line(obj: dict[str, Any]) -> str:
    """One object as a compact JSON line, newline included."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def read_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValidationError(f"expected {key} as a string, found {type(value).__name__}")
    return value


def read_int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"expected {key} as a non-negative integer, found {value!r}")
    return value


def read_bytes(obj: dict[str, Any], key: str) -> bytes:
    text = read_str(obj, key)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValidationError(f"expected {key} in base64") from e
