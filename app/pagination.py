"""Opaque cursors for keyset pagination (`limit`, `cursor` → `items`, `next_cursor`)."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from app.errors import invalid_field

T = TypeVar("T")


def _plain(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, datetime)
        else str(value)
        if isinstance(value, uuid.UUID)
        else value
    )


def encode_cursor(position: dict[str, Any]) -> str:
    """The cursor standing for the last item of a page (ints, strings, datetimes, UUIDs)."""
    plain = {k: _plain(v) for k, v in position.items()}
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime")
        return parsed
    if kind is uuid.UUID:
        return uuid.UUID(value)
    # bool is an int in Python: refuse it where an int is expected.
    if type(value) is not kind:
        raise ValueError("wrong type")
    return value


def decode_cursor(cursor: str, keys: dict[str, type]) -> tuple[Any, ...]:
    """The position a cursor stands for, each value converted to its type in `keys`
    (name → int, str, datetime or uuid.UUID); a 422 naming `cursor` when it is not one
    this service gave."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return tuple(_typed(position[k], kind) for k, kind in keys.items())
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise invalid_field(["query", "cursor"], "not a cursor this service gave") from exc


def page(
    rows: Sequence[T], limit: int, position: Callable[[T], dict[str, Any]]
) -> tuple[list[T], str | None]:
    """A page of `rows` fetched with `limit + 1`, and the cursor to the next page (the
    position of the page's last row), None when this is the last."""
    if len(rows) > limit:
        return list(rows[:limit]), encode_cursor(position(rows[limit - 1]))
    return list(rows), None
