"""Per-request context: the request id and the client address.

The request id comes from a trusted ``X-Request-ID`` when it looks like one (a proxy or the app
set it) or is made here; it is echoed in the response, written in every log line and every audit
row, and quoted in 500 problems so a user can report it.
"""

from __future__ import annotations

import re
import uuid

from flask import g, has_request_context, request

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def request_id() -> str | None:
    if not has_request_context():
        return None
    return getattr(g, "request_id", None)


def client_address() -> str:
    """The client's address (``ProxyFix`` has already applied ``TRUSTED_PROXIES``)."""
    return request.remote_addr or "unknown"
