"""Schemas shared by every domain (their field types are in ``backend.fields``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, validates_schema


class EmptySchema(ma.Schema):
    """The body of an action that takes none: absent, or `{}`. Any field sent is refused (422),
    so a client cannot believe it set something (e.g. `status`) that was silently ignored."""


class UpdateSchema(ma.Schema):
    """The body of a ``PATCH``: at least one field to change. An empty body (``{}``, or only
    empty nested objects) is a 422 naming nothing to change, so nothing is written or audited."""

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **_: Any) -> None:
        if all(value == {} for value in data.values()):
            raise ValidationError("names no field to change")
