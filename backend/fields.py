"""The field types every schema uses: what the database can store is decided here, once.

A request that passes these fields can be stored by PostgreSQL and SQLite alike, so bad input is
a 422 naming the field, never a 500 from the driver:

- ``String`` (and ``Email``) refuse the characters PostgreSQL ``text`` cannot hold: NUL
  (``\\u0000``) and unpaired surrogates (``"\\ud800"`` in JSON, which no UTF-8 encoder writes).
- ``Integer`` is strict (a JSON integer: not ``4.99``, not ``"4"``, not ``true``) and bounded by
  the 32-bit ``integer`` column; ``QueryInteger`` is the same for query strings (digits only).
- ``Float`` refuses NaN and infinities (not JSON, and no range check holds for NaN) and strings.
- ``DateTime``, ``AwareDateTime`` and ``Date`` accept 1900 to 2999 only: an instant must exist
  in UTC (``0001-01-01T00:00:00+14:00`` does not) and stay far from the calendar's end, so adding
  a follow-up year to it cannot overflow.

The other marshmallow fields (``UUID``, ``Boolean``, ``Nested``, ``List``, ``Dict``,
``Method``) are re-exported unchanged so that a schema module imports its fields from one place;
a test walks every schema and refuses a bare marshmallow ``String``, ``Integer``, ``Float``,
``DateTime`` or ``Date``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import fields as ma_fields
from marshmallow import validate
from marshmallow.fields import UUID as UUID
from marshmallow.fields import Boolean as Boolean
from marshmallow.fields import Dict as Dict
from marshmallow.fields import Field as Field
from marshmallow.fields import Function as Function
from marshmallow.fields import List as List
from marshmallow.fields import Method as Method
from marshmallow.fields import Nested as Nested
from marshmallow.fields import Raw as Raw
from werkzeug.routing import BaseConverter

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # PostgreSQL `integer`
YEAR_MIN, YEAR_MAX = 1900, 2999

# What PostgreSQL's text type refuses: NUL, and (through UTF-8) any unpaired surrogate.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"

# Control characters a free-text answer may lose without losing meaning: C0 (but tab, line feed
# and carriage return), DEL, C1, and what PostgreSQL refuses.
STRIPPABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def is_storable(text: str) -> bool:
    """Whether the database can store ``text`` (for the nurse pages' few unschematised forms)."""
    return UNSTORABLE.search(text) is None


def strip_control_characters(text: str) -> str:
    """``text`` without control characters and unpaired surrogates (tab and newlines stay)."""
    return STRIPPABLE.sub("", text)


def _check_storable(field: ma_fields.Field[Any], value: str) -> str:
    if UNSTORABLE.search(value):
        raise field.make_error("unstorable")
    return value


class String(ma_fields.String):
    """Text that the database can store."""

    default_error_messages = {"unstorable": UNSTORABLE_MESSAGE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        return _check_storable(self, super()._deserialize(value, attr, data, **kwargs))


class Email(ma_fields.Email):
    """An e-mail address that the database can store."""

    default_error_messages = {"unstorable": UNSTORABLE_MESSAGE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            _check_storable(self, value)
        return super()._deserialize(value, attr, data, **kwargs)


def _bounded(validators: Any, low: int | None, high: int | None) -> list[Any]:
    given = (
        []
        if validators is None
        else list(validators)
        if isinstance(validators, list)
        else [validators]
    )
    return [*given, validate.Range(low, high)]


class Integer(ma_fields.Integer):
    """A JSON integer within the column's range (``integer`` unless ``minimum``/``maximum``
    say narrower); 4.99, 4.0, "4" and true are refused, never truncated or converted."""

    default_error_messages = {"invalid": "Not a valid integer.", "too_large": "Number too large."}

    def __init__(
        self,
        *,
        minimum: int = INT32_MIN,
        maximum: int = INT32_MAX,
        validate: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("strict", None)  # always strict: a float or a string is never an integer
        super().__init__(strict=True, validate=_bounded(validate, minimum, maximum), **kwargs)

    def _validated(self, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


_DIGITS = re.compile(r"[+-]?\d{1,12}")


class QueryInteger(Integer):
    """An integer from a query string: digits only (a query value is always text)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            return int(value)
        return super()._validated(value)


class Float(ma_fields.Float):
    """A finite JSON number (an integer is fine; a string, NaN or an infinity is not)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _validated(self, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


_YEARS_MESSAGE = f"must be between the years {YEAR_MIN} and {YEAR_MAX}"


def _instant_in_range(field: ma_fields.Field[Any], value: datetime) -> datetime:
    if value.tzinfo is None:
        if not YEAR_MIN <= value.year <= YEAR_MAX:
            raise field.make_error("out_of_range")
        return value
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise field.make_error("out_of_range") from None
    if not YEAR_MIN <= utc.year <= YEAR_MAX:
        raise field.make_error("out_of_range")
    return value


class DateTime(ma_fields.DateTime):
    """An RFC 3339 instant between 1900 and 2999 (in UTC)."""

    default_error_messages = {"out_of_range": _YEARS_MESSAGE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        return _instant_in_range(self, super()._deserialize(value, attr, data, **kwargs))


class AwareDateTime(ma_fields.AwareDateTime):
    """An RFC 3339 instant with its offset, between 1900 and 2999 (in UTC)."""

    default_error_messages = {"out_of_range": _YEARS_MESSAGE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        return _instant_in_range(self, super()._deserialize(value, attr, data, **kwargs))


class Date(ma_fields.Date):
    """A calendar date between 1900 and 2999."""

    default_error_messages = {"out_of_range": _YEARS_MESSAGE}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> date:
        result: date = super()._deserialize(value, attr, data, **kwargs)
        if not YEAR_MIN <= result.year <= YEAR_MAX:
            raise self.make_error("out_of_range")
        return result


# The marshmallow types a schema must not use directly (the test of every schema checks it).
GUARDED = (
    ma_fields.String,
    ma_fields.Integer,
    ma_fields.Float,
    ma_fields.DateTime,
    ma_fields.Date,
)
OURS = (String, Email, Integer, QueryInteger, Float, DateTime, AwareDateTime, Date)


class KeyConverter(BaseConverter):
    """A path segment naming something by key (``/instruments/followup``): lowercase letters,
    digits and underscores, at most 32 (the key columns' length). Anything else (a NUL, a
    space) is a 404 from routing, before a query could choke on it."""

    regex = r"[a-z0-9_]{1,32}"
    schema = {"type": "string", "pattern": "^[a-z0-9_]{1,32}$", "maxLength": 32}
