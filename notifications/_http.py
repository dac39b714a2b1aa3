"""Small helpers shared by the HTTP-based transports (FCM, APNs, Twilio)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .base import TransportError, parse_retry_after

USER_AGENT = "clinical-followup-notifications/1"


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one."""
    try:
        value = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def network_error(provider: str, exc: httpx.HTTPError) -> TransportError:
    """Any failure to get an HTTP response (DNS, refused, TLS, timeout, reset)."""
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return TransportError(
        f"{provider}: request failed ({kind})", permanent=False, code="unavailable"
    )


def status_fallback(provider: str, response: httpx.Response, detail: str = "") -> TransportError:
    """Classification for statuses a provider does not document specifically."""
    status = response.status_code
    suffix = f" {detail}" if detail else ""
    if status == 429:
        return TransportError(
            f"{provider}: rate limited (HTTP 429){suffix}",
            permanent=False,
            retry_after=retry_after(response),
            code="rate_limited",
        )
    if status in (401, 403):
        return TransportError(
            f"{provider}: credentials rejected (HTTP {status}){suffix}",
            permanent=False,
            code="auth",
        )
    if status >= 500 or status == 408:
        return TransportError(
            f"{provider}: provider unavailable (HTTP {status}){suffix}",
            permanent=False,
            retry_after=retry_after(response),
            code="unavailable",
        )
    return TransportError(
        f"{provider}: request refused (HTTP {status}){suffix}",
        permanent=False,
        code="config",
    )
