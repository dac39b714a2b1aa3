"""Keyset pagination for every list: ``{"items": [...], "next_cursor": "..." | null}``.

The cursor is the sort key of the last item, opaque to clients (URL-safe base64 of JSON). Keyset
rather than offset: a page stays right while new rows arrive, and deep pages cost the same.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from marshmallow import validate

from backend import fields
from backend.errors import ValidationProblem
from backend.extensions import db


class PageArgsSchema(ma.Schema):
    limit = fields.QueryInteger(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque cursor from the sort key of a page's last item."""
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    """The ``n`` values of a cursor, as strings (a 422 naming ``cursor`` when it is not one)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != n:
            raise ValueError
        return [str(v) for v in values]
    except ValueError as exc:
        raise ValidationProblem(
            [{"parameter": "cursor", "detail": "is not a valid cursor"}]
        ) from exc


def paginate(
    query: sa.Select[Any], keys: Sequence[Any], limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``query`` ordered by ``keys`` (ascending, the last one unique)."""
    if cursor:
        raw = decode_cursor(cursor, len(keys))
        try:
            after = [
                sa.literal(_coerce(key, value), key.type)
                for key, value in zip(keys, raw, strict=True)
            ]
        except ValueError as exc:
            raise ValidationProblem(
                [{"parameter": "cursor", "detail": "is not a valid cursor"}]
            ) from exc
        query = query.where(sa.tuple_(*keys) > sa.tuple_(*after))
    rows = db.session.execute(query.order_by(*keys).limit(limit + 1)).scalars().all()
    page = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor([getattr(last, str(key.key)) for key in keys])
    return page, next_cursor


def paginate_sorted(
    items: Sequence[Any],
    keys: Sequence[tuple[str, Callable[[str], Any]]],
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of ``items``, already in ascending order of the attributes ``keys`` (the last one
    unique), each with the function reading its value back from a cursor: for a list filtered in
    Python (an assignment's status depends on the time), with the same cursors as ``paginate``."""
    if cursor:
        raw = decode_cursor(cursor, len(keys))
        try:
            after = tuple(parse(value) for (_, parse), value in zip(keys, raw, strict=True))
        except ValueError as exc:
            raise ValidationProblem(
                [{"parameter": "cursor", "detail": "is not a valid cursor"}]
            ) from exc
        items = [i for i in items if tuple(getattr(i, name) for name, _ in keys) > after]
    page = list(items[:limit])
    next_cursor = None
    if len(items) > limit:
        next_cursor = encode_cursor([getattr(page[-1], name) for name, _ in keys])
    return page, next_cursor


def aware_datetime(value: str) -> datetime:
    """A cursor's instant (ValueError when it has no offset: it could not be compared)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("an instant needs its offset")
    return parsed


def _coerce(key: Any, value: str) -> Any:
    """Turn a cursor string back into the Python value of its column."""
    column_type = key.type
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    python_type = column_type.python_type
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    return python_type(value)
