"""JSON bodies of bounded depth, for every request.

Python's parser recurses once per nested array or object: a 100,000-deep ``[[[...]]]`` raises
``RecursionError`` (not ``ValueError``), which nothing expects, and a body a little shallower than
the interpreter's limit parses but breaks whatever walks it next (hashing, serialising). No
request of this API nests more than a few levels, so a body deeper than ``MAX_DEPTH`` is refused
as malformed (400) before any view or rate limiter reads it.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32


class TooDeep(ValueError):
    """The JSON text nests arrays and objects more than ``MAX_DEPTH`` levels."""


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, whose ``loads`` turns a too-deep document into ``ValueError``
    (``request.get_json`` then answers 400 like any malformed body)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise TooDeep(f"JSON nested more than {MAX_DEPTH} levels deep") from None
        if depth_exceeds(value):
            raise TooDeep(f"JSON nested more than {MAX_DEPTH} levels deep")
        return value
