"""``backend.db.json_loads``, the engine's reader of JSON columns, against ``json.loads``."""

from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa

from backend.db import JSONType, json_loads
from backend.extensions import db

TEXTS = [
    '{"signals": [{"response": {"id": "a1"}, "score": 2.5}], "fr": "Douleur à 6/10"}',
    '{"b": 1, "a": [true, false, null], "c": {"d": -1e-7, "e": 12345678901234567890}}',
    '"\\u00e9t\\u00e9 \\ud83d\\ude00"',
    "[]",
    "{}",
    "0",
    "NaN",
    '  {"padded": true}\n',  # whitespace around: through json.loads itself
    '{"a": 1}{"b": 2}',  # not one value: json.loads' error
    '{"a": ',  # cut short
    "",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("as_bytes", [True, False])
def test_a_json_column_reads_what_json_loads_reads(text, as_bytes):
    data = text.encode() if as_bytes else text
    try:
        expected = json.loads(data)
    except json.JSONDecodeError as error:
        with pytest.raises(json.JSONDecodeError) as raised:
            json_loads(data)
        assert str(raised.value) == str(error)
        return
    value = json_loads(data)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected and type(value) is type(expected)
        assert json.dumps(value) == json.dumps(expected)  # the same key order too


def test_the_engine_reads_json_columns_with_it(app):
    assert db.engine.dialect._json_deserializer is json_loads
    value = {"b": 1, "a": [True, None, 2.5, "été"], "c": {}}
    read = db.session.execute(sa.select(sa.literal(value, JSONType))).scalar()
    assert read == value
