"""Schemas shared by every domain."""

from __future__ import annotations

import marshmallow as ma


class EmptySchema(ma.Schema):
    """The body of an action that takes none: absent, or `{}`. Any field sent is refused (422),
    so a client cannot believe it set something (e.g. `status`) that was silently ignored."""
