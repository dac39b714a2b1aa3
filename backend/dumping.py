"""Marshmallow's dump, compiled once per schema, for the lists the nurses read all day.

``Schema.dump`` decides again, for every field of every object, how to reach and format it
(about 20 function calls a field): a page of 50 alerts of 27 fields each cost about 8 ms, a
third of the request. A schema that derives from ``CompiledDumpSchema`` makes those decisions
once, the first time it dumps: a function per field that
reads the value and formats it as the field's own ``_serialize`` would. It gives what
``schema.dump`` gives (the tests compare them on the API's schemas), and uses ``dump`` itself
for what it does not know:

- a field whose class formats, reads or defaults differently (an overridden ``serialize``,
  ``get_value`` or ``_serialize`` not listed below, a dotted ``attribute``, ``as_string``, a
  format other than ISO 8601) is serialised by the field itself, as ``dump`` does;
- a schema with ``pre_dump`` or ``post_dump`` hooks, or its own ``get_attribute``, is dumped by
  ``dump``.

The schemas stay the reference: the OpenAPI document and the input validation use them as
before, and only the schemas that derive from ``CompiledDumpSchema`` (the alert queue's, the
timeline's) dump through here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields as mf
from marshmallow import missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import ensure_text_type

Format = Callable[[Any], Any]


def _text(value: Any) -> Any:
    return value if value is None or type(value) is str else ensure_text_type(value)


def _as_text(value: Any) -> Any:
    return None if value is None else str(value)


def _same(value: Any) -> Any:
    return value


def _none_or(function: Format) -> Format:
    def format_(value: Any) -> Any:
        return None if value is None else function(value)

    return format_


def _value_format(field: mf.Field[Any]) -> Format | None:
    """How the field formats a value it was given (its ``_serialize``), or None when only the
    field itself knows."""
    kind = type(field)
    own: Any = kind._serialize
    if own is mf.Field._serialize:  # Raw, Boolean and the like give the value as it is
        return _same
    if own is mf.String._serialize:
        return _text
    if own is mf.UUID._serialize:
        return _as_text
    if (
        own is mf.Number._serialize
        and kind._format_num is mf.Number._format_num  # type: ignore[attr-defined]
        and not field.as_string  # type: ignore[attr-defined]
        and field.num_type in (int, float)  # type: ignore[attr-defined]
    ):
        return _none_or(field.num_type)  # type: ignore[attr-defined]
    if own is mf._TemporalField._serialize:
        data_format = field.format or field.DEFAULT_FORMAT  # type: ignore[attr-defined]
        if data_format in ("iso", "iso8601"):
            return _none_or(field.SERIALIZATION_FUNCS[data_format])  # type: ignore[attr-defined]
        return None
    if own is mf.Mapping._serialize:
        if field.key_field is None and field.value_field is None:  # type: ignore[attr-defined]
            return _none_or(field.mapping_type)  # type: ignore[attr-defined]
        return None
    if own is mf.Nested._serialize:
        nested: ma.Schema = field.schema  # type: ignore[attr-defined]
        dump_one = _compiled(nested)
        if nested.many or field.many:  # type: ignore[attr-defined]
            return _none_or(lambda values: [dump_one(v) for v in values])
        return _none_or(dump_one)
    if own is mf.List._serialize:
        inner = _value_format(field.inner)  # type: ignore[attr-defined]
        if inner is None:
            return None
        return _none_or(lambda values: [inner(v) for v in values])
    return None


def _reader(name: str) -> Callable[[Any], Any]:
    """``marshmallow.utils.get_value`` for a key without a dot: an item, else an attribute."""

    def read(obj: Any) -> Any:
        if not hasattr(obj, "__getitem__"):
            return getattr(obj, name, missing)
        try:
            return obj[name]
        except (KeyError, IndexError, TypeError, AttributeError):
            return getattr(obj, name, missing)

    return read


def _field_dumper(
    name: str, field: mf.Field[Any], schema: ma.Schema
) -> tuple[str | None, Format | None, Callable[[Any], Any]]:
    """The field's value of ``obj`` as ``field.serialize`` gives it (``missing``: left out): the
    key it reads and its format when the plan may read the value itself (None, None when only
    the field knows), and a function doing the whole of it."""
    kind = type(field)
    key = field.attribute if field.attribute is not None else name
    format_ = _value_format(field)
    plain = (
        kind.serialize is mf.Field.serialize
        and kind.get_value is mf.Field.get_value
        and field._CHECK_ATTRIBUTE
        and "." not in key
    )
    if format_ is None or not plain:
        return None, None, functools.partial(field.serialize, name, accessor=schema.get_attribute)
    read = _reader(key)
    has_default = field.dump_default is not missing

    def dump(obj: Any) -> Any:
        value = read(obj)
        if value is missing:
            # The field's default, or left out: as the field itself decides.
            return (
                field.serialize(name, obj, accessor=schema.get_attribute) if has_default else value
            )
        return format_(value)

    return key, format_, dump


def _compiled(schema: ma.Schema) -> Callable[[Any], Any]:
    """A function giving ``schema.dump(obj)`` for one object."""
    hooks = schema._hooks
    if (
        hooks[PRE_DUMP]
        or hooks[POST_DUMP]
        or type(schema).get_attribute is not ma.Schema.get_attribute
        or type(schema)._serialize is not ma.Schema._serialize
    ):
        return functools.partial(ma.Schema.dump, schema, many=False)
    dict_class = schema.dict_class
    plan = [
        (
            field.data_key if field.data_key is not None else name,
            *_field_dumper(name, field, schema),
        )
        for name, field in schema.dump_fields.items()
    ]

    def dump(obj: Any) -> Any:
        out = dict_class()
        if type(obj) is dict:
            # A dict (what the presenters give): its items read directly, the value formatted
            # here; an absent key goes the field's way (an attribute of that name, else the
            # default).
            read = obj.get
        elif not hasattr(obj, "__getitem__"):
            # An object (an ORM entity, a dataclass): ``_reader`` would read its attributes
            # (``getattr(obj, key, missing)``); asked once here instead of at each field (the
            # timeline's hundred responses and questionnaires).
            read = functools.partial(getattr, obj)
        else:  # a mapping of another kind, or a sequence: each field reads it its own way
            for key, _, _, dump_field in plan:
                value = dump_field(obj)
                if value is not missing:
                    out[key] = value
            return out
        for key, read_key, format_, dump_field in plan:
            if format_ is None:
                value = dump_field(obj)
            else:
                value = read(read_key, missing)
                if value is missing:
                    value = dump_field(obj)
                elif not (format_ is _same or (format_ is _text and type(value) is str)):
                    value = format_(value)
            if value is not missing:
                out[key] = value
        return out

    return dump


@functools.lru_cache(maxsize=128)
def _plan(
    kind: type[ma.Schema],
    only: frozenset[str] | None,
    exclude: frozenset[str],
    load_only: frozenset[str],
    dump_only: frozenset[str],
) -> Callable[[Any], Any]:
    """The compiled dump of one shape of schema (schemas keep no state between dumps: one plan
    serves every instance of that shape)."""
    return _compiled(kind(only=only, exclude=exclude, load_only=load_only, dump_only=dump_only))


class CompiledDumpSchema(ma.Schema):
    """A schema whose ``dump`` of one object runs the compiled plan (see the module); a list
    (``many``) is dumped one object at a time through the same plan."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if self._hooks[PRE_DUMP] or self._hooks[POST_DUMP]:
            return super().dump(obj, many=many)
        one = _plan(
            type(self),
            None if self.only is None else frozenset(self.only),
            frozenset(self.exclude),
            frozenset(self.load_only),
            frozenset(self.dump_only),
        )
        if (many if many is not None else self.many) and obj is not None:
            return [one(item) for item in obj]
        return one(obj)


def reference_dump(schema: ma.Schema, obj: Any) -> Any:
    """What marshmallow itself gives for ``obj`` (what the compiled dump must give)."""
    return ma.Schema.dump(schema, obj)
