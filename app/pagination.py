"""Opaque cursors for keyset pagination (`limit`, `cursor` → `items`, `next_cursor`)."""

import base64
import binascii
import json
from typing import Any

from app.errors import invalid_field


def encode_cursor(position: dict[str, Any]) -> str:
    """The cursor standing for the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: dict[str, type]) -> tuple[Any, ...]:
    """The position a cursor stands for, its values checked against `keys` (name → type);
    a 422 naming `cursor` when it is not one this service gave."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = tuple(position[k] for k in keys)
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid_field(["query", "cursor"], "not a cursor this service gave") from exc
    # bool is an int in Python: refuse it where an int is expected.
    if any(type(v) is not t for v, t in zip(values, keys.values(), strict=True)):
        raise invalid_field(["query", "cursor"], "not a cursor this service gave")
    return values
