"""Declarative base and the column types every model shares.

The naming convention gives every constraint a predictable name, so Alembic migrations can drop
or alter them on PostgreSQL and SQLite (batch mode) alike.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.orm.attributes import set_committed_value

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as UTC and
    given back their UTC zone when read. A naive datetime is refused: it is always a bug here.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def json_loads(data: bytes | str) -> Any:
    """``json.loads`` of a JSON column's value, as the engine's ``json_deserializer``: the same
    values, without its detection of the bytes' encoding and its two regular expressions around
    the scanner (PostgreSQL sends UTF-8, and a queue page decodes a hundred values; its Python
    calls were a twentieth of ``GET /alerts``'). Anything but one JSON value filling the whole
    text (whitespace around it, or an error) goes through ``json.loads`` itself."""
    text = data.decode() if isinstance(data, bytes) else data
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return value


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            datetime: UTCDateTime(),
            uuid.UUID: sa.Uuid(),
            dict[str, Any]: JSONType,
            list[Any]: JSONType,
        },
    )


class UUIDPrimaryKey:
    """A random UUID primary key: ids are never sequential (the API contract)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def update_rows(
    session: Any,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    loaded: Sequence[Any] = (),
    **same: Any,
) -> None:
    """UPDATE ``table`` row by id: ``same`` on every row and each row's own values (``rows``:
    mappings with ``id`` and the same other keys), in one statement on PostgreSQL
    (``UPDATE ... FROM unnest(...)``: a batch of 500 was 500 executions of one statement) and
    one executemany elsewhere. ``loaded``, the ORM objects of these rows in the same order (their
    attributes named as the columns), are told their new values, with nothing left to flush.
    """
    if not rows:
        return
    keys = [key for key in rows[0] if key != "id"]
    if session.get_bind().dialect.name == "postgresql":
        # One array per column, unnested side by side: the SQL is the same whatever the number
        # of rows, so it is compiled once (a VALUES list was compiled again at every call).
        given = _arrays(table, ["id", *keys], rows)
        session.execute(
            sa.update(table)
            .where(table.c.id == given.c.id)
            .values(**same, **{key: given.c[key] for key in keys})
        )
    else:
        session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("_id"))
            .values(**same, **{key: sa.bindparam(f"_{key}") for key in keys}),
            [{"_id": row["id"], **{f"_{key}": row[key] for key in keys}} for row in rows],
        )
    if loaded:
        for obj, row in zip(loaded, rows, strict=True):
            told(obj, {**same, **{key: row[key] for key in keys}})


class _BinaryList(list[Any]):
    """A list psycopg sends as a binary array (registered below): about five times cheaper to
    build than the text form, which quotes and escapes every element."""


def _register_binary_lists() -> None:
    try:
        import psycopg
        from psycopg.types.array import ListBinaryDumper
    except ImportError:  # pragma: no cover - SQLite only
        return
    psycopg.adapters.register_dumper(_BinaryList, ListBinaryDumper)


_register_binary_lists()


class _Array(sa.types.TypeDecorator[list[Any]]):
    """PostgreSQL ``ARRAY`` of a column's type, bound as a binary array (see ``_BinaryList``):
    the batch parameters of ``update_rows``, ``insert_rows`` and ``among``."""

    impl = ARRAY
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        inner = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            if inner is not None:
                value = inner(value)
            return None if value is None else _BinaryList(value)

        return process


def binary_array(values: Iterable[Any]) -> list[Any]:
    """``values`` as a list psycopg binds as a binary array: for a statement run as the driver's
    SQL (``Connection.exec_driver_sql``), where no SQLAlchemy type processes it."""
    return _BinaryList(values)


def batch_array(type_: Any) -> Any:
    """The type of a PostgreSQL array parameter carrying one column of a batch (bound binary)."""
    return _Array(type_)


def _arrays(table: sa.Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Any:
    """``rows`` as one array parameter per column, unnested side by side (PostgreSQL): the SQL is
    the same whatever the number of rows, so it is compiled once and stays short (psycopg
    re-parses a statement longer than 4 kB or with more than 50 parameters at every call)."""
    return (
        sa.func.unnest(
            *(
                sa.bindparam(
                    f"_{name}", [row[name] for row in rows], type_=_Array(table.c[name].type)
                )
                for name in columns
            )
        )
        .table_valued(*(sa.column(name, table.c[name].type) for name in columns))
        .render_derived(name="given")
    )


class _RandomIds(threading.local):
    """Per thread: random 128-bit numbers drawn from the OS a batch at a time."""

    def __init__(self) -> None:
        self.pool: list[int] = []


_ids = _RandomIds()
_ID_BATCH = 256
# Version 4, RFC 4122 variant: what ``uuid.uuid4`` sets in its 128 random bits.
_ID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_ID_SET = (4 << 76) | (0x8000 << 48)


def _forget_ids() -> None:
    _ids.pool.clear()


# A forked worker must not hand out the ids its parent had drawn: it draws its own.
os.register_at_fork(after_in_child=_forget_ids)


def new_id() -> uuid.UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` gives, for the rows the hot paths write by
    the thousand: the random bytes come from ``os.urandom`` 256 ids at a time and the UUID is
    built without ``UUID.__init__``'s checks (``uuid4`` was 5-11 us an id on the reference
    machine, a reminder of a busy minute writes about seven; this is 1-4 us). Per thread, and
    emptied in a forked child, so no two processes or threads share an id."""
    pool = _ids.pool
    if not pool:
        raw = os.urandom(16 * _ID_BATCH)
        pool.extend(int.from_bytes(raw[i : i + 16], "big") for i in range(0, len(raw), 16))
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", (pool.pop() & _ID_CLEAR) | _ID_SET)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def insert_rows(session: Any, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (mappings with the same keys, ``id`` included: no Python-side default is
    applied) into ``table``: on PostgreSQL one ``INSERT ... SELECT FROM unnest(arrays)`` whatever
    their number (a multi-row VALUES of 500 rows is thousands of parameters, parsed again by the
    driver at every call); one executemany elsewhere."""
    if not rows:
        return
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        given = _arrays(table, columns, rows)
        session.execute(
            sa.insert(table).from_select(
                columns, sa.select(*(given.c[name] for name in columns)), include_defaults=False
            )
        )
    else:
        session.execute(sa.insert(table), list(rows))


def among(session: Any, column: Any, values: Iterable[Any]) -> Any:
    """``column IN (values)``, written ``column = ANY(:array)`` on PostgreSQL: one parameter and
    the same SQL for a batch of any size (an IN list of 500 ids is a new 8 kB statement for the
    driver to parse at every call)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, values, type_=_Array(column.type)))
    return column.in_(values)


def told(obj: Any, values: Mapping[str, Any]) -> None:
    """Tell a loaded ORM object the values a set-based statement just wrote to its row
    (attributes named as the columns): its state matches the database with nothing to flush."""
    for key, value in values.items():
        set_committed_value(obj, key, value)


def upsert_insert(entity: Any) -> Any:
    """``INSERT`` of the database in use, with its ``ON CONFLICT`` clauses (PostgreSQL and
    SQLite share their spelling): ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    from backend.extensions import db

    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(entity)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(entity)
