"""Declarative base and the column types every model shares.

The naming convention gives every constraint a predictable name, so Alembic migrations can drop
or alter them on PostgreSQL and SQLite (batch mode) alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
        columns = ["id", *keys]
        given = (
            sa.func.unnest(
                *(
                    sa.bindparam(
                        f"_{name}",
                        [row[name] for row in rows],
                        type_=ARRAY(table.c[name].type),
                    )
                    for name in columns
                )
            )
            .table_valued(*(sa.column(name, table.c[name].type) for name in columns))
            .render_derived(name="given")
        )
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
