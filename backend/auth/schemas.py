"""Request and response schemas of staff authentication."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend import fields
from backend.locales import LOCALES


class LoginSchema(ma.Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )


class RefreshSchema(ma.Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=16, max=256))


class SiteRefSchema(ma.Schema):
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    timezone = fields.String()


class UserSchema(ma.Schema):
    id = fields.UUID()
    email = fields.String()
    full_name = fields.String()
    role = fields.String()
    locale = fields.String(
        allow_none=True,
        metadata={
            "description": "Language of the API's texts; null: Accept-Language, else the site's"
        },
    )
    site = fields.Nested(SiteRefSchema)


class TokenPairSchema(ma.Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds"})
    user = fields.Nested(UserSchema)


class UserCreateSchema(ma.Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )
    role = fields.String(required=True, validate=validate.OneOf(("nurse", "physician", "admin")))
    full_name = fields.String(load_default="", validate=validate.Length(max=200))
    locale = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LOCALES))


class UserListSchema(ma.Schema):
    items = fields.List(fields.Nested(UserSchema))
    next_cursor = fields.String(allow_none=True)
