"""Per-request context: the request id and the client address.

The request id is made here (32 hex digits), or taken from ``X-Request-ID`` only behind a trusted
proxy (``TRUSTED_PROXIES``) and only when it is a proxy's id (32 hex digits, nginx's
``$request_id``, or a UUID): a client cannot choose the id its actions are audited under. It is
echoed in the response, written in every log line and every audit row, and quoted in 500
problems so a user can report it.
"""

from __future__ import annotations

import re
import uuid

from flask import current_app, g, has_request_context, request

_PROXY_REQUEST_ID = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "").strip().lower()
    trusted = bool(current_app.config.get("TRUSTED_PROXIES"))
    if trusted and _PROXY_REQUEST_ID.fullmatch(incoming):
        g.request_id = incoming
    else:
        g.request_id = uuid.uuid4().hex


def request_id() -> str | None:
    if not has_request_context():
        return None
    return getattr(g, "request_id", None)


def client_address() -> str:
    """The client's address (``ProxyFix`` has already applied ``TRUSTED_PROXIES``)."""
    return request.remote_addr or "unknown"
