"""iOS push through the APNs provider API (HTTP/2, token-based authentication).

References (Apple developer documentation, "Sending notification requests to
APNs", "Establishing a token-based connection to APNs", "Handling error
responses from APNs"):

* ``POST /3/device/{device-token}`` over HTTP/2 only, with headers
  ``authorization: bearer <JWT>``, ``apns-topic`` (bundle id),
  ``apns-push-type: alert``, ``apns-priority: 10``, optional
  ``apns-collapse-id`` (at most 64 bytes) and ``apns-id`` (a UUID, echoed back).
* The provider JWT is ES256-signed with the ``.p8`` key, header ``kid``,
  claims ``iss`` (team id) and ``iat``.  APNs rejects tokens older than one
  hour (``ExpiredProviderToken``) and refreshes more often than every 20
  minutes (``TooManyProviderTokenUpdates``), so one token is reused for
  ~50 minutes.
* Success is ``200`` with an ``apns-id`` header and an empty body; errors carry
  ``{"reason": "...", "timestamp": ms}``.  ``410`` (``Unregistered``,
  ``ExpiredToken``) and ``400 BadDeviceToken`` / ``DeviceTokenNotForTopic``
  mean the token is dead.  ``403`` provider-token reasons are ours
  (``code="auth"``; the cached JWT is dropped).  ``429``, ``500`` and ``503``
  are retried (honouring ``Retry-After`` when sent).

The default client is ``httpx.Client(http1=False, http2=True)``: APNs speaks
only HTTP/2, and with HTTP/1.1 disabled httpx also talks HTTP/2 with prior
knowledge to a plain ``http://`` endpoint, which the tests use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ._http import USER_AGENT, json_object, network_error, status_fallback
from .base import Message, SendResult, TransportError

__all__ = ["ApnsTransport", "apns_collapse_id"]

log = logging.getLogger(__name__)

#: Reuse one provider token for this long (APNs: between 20 and 60 minutes).
TOKEN_LIFETIME = 50 * 60
_APNS_ID_NAMESPACE = uuid.UUID("5b0f2a4e-6c1d-4d3b-9a8e-2f7c1e0d9b61")
_DEAD_TOKEN_400 = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
_PROVIDER_TOKEN_403 = frozenset(
    {"ExpiredProviderToken", "InvalidProviderToken", "MissingProviderToken"}
)


def apns_collapse_id(collapse_key: str) -> str:
    """``collapse_key`` as a valid ``apns-collapse-id`` (at most 64 bytes)."""
    if len(collapse_key.encode()) <= 64:
        return collapse_key
    return hashlib.sha256(collapse_key.encode()).hexdigest()


class ApnsTransport:
    """Send alert notifications to iOS devices with APNs token authentication."""

    channel = "push"

    def __init__(
        self,
        team_id: str,
        key_id: str,
        private_key_pem: str | bytes,
        topic: str,
        *,
        endpoint: str = "https://api.push.apple.com",
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("APNs auth key must be an EC P-256 private key (.p8)")
        self.team_id = team_id
        self.key_id = key_id
        self._key = key
        self.topic = topic
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.Client(
            http1=False, http2=True, timeout=timeout, headers={"user-agent": USER_AGENT}
        )
        self._lock = threading.Lock()
        self._jwt: str | None = None
        self._jwt_issued_at = 0.0

    def __repr__(self) -> str:
        return f"ApnsTransport(topic={self.topic!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def provider_token(self) -> str:
        """The cached provider JWT, renewed after :data:`TOKEN_LIFETIME` seconds."""
        with self._lock:
            now = self._clock()
            if self._jwt is None or now - self._jwt_issued_at >= TOKEN_LIFETIME:
                self._jwt = jwt.encode(
                    {"iss": self.team_id, "iat": int(now)},
                    self._key,
                    algorithm="ES256",
                    headers={"kid": self.key_id},
                )
                self._jwt_issued_at = now
            return self._jwt

    def _drop_provider_token(self, stale: str) -> None:
        with self._lock:
            if self._jwt == stale:
                self._jwt = None

    @staticmethod
    def apns_id(message: Message) -> str | None:
        """``apns-id`` for ``message``: the idempotency key when it is a UUID,
        else a UUID derived from it (stable across retries), else none."""
        key = message.idempotency_key
        if not key:
            return None
        try:
            return str(uuid.UUID(key))
        except ValueError:
            return str(uuid.uuid5(_APNS_ID_NAMESPACE, key))

    def payload(self, message: Message) -> dict[str, Any]:
        """The JSON body :meth:`send` posts for ``message``."""
        body: dict[str, Any] = dict(message.data)
        if message.link:
            body["link"] = message.link
        body["aps"] = {
            "alert": {"title": message.title, "body": message.body},
            "sound": "default",
        }
        return body

    def headers(self, message: Message, provider_token: str) -> dict[str, str]:
        headers = {
            "authorization": f"bearer {provider_token}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "content-type": "application/json",
        }
        if message.collapse_key:
            headers["apns-collapse-id"] = apns_collapse_id(message.collapse_key)
        apns_id = self.apns_id(message)
        if apns_id:
            headers["apns-id"] = apns_id
        return headers

    def send(self, message: Message) -> SendResult:
        provider_token = self.provider_token()
        headers = self.headers(message, provider_token)
        url = f"{self.endpoint}/3/device/{quote(message.to.strip(), safe='')}"
        try:
            response = self._http.post(
                url,
                content=json.dumps(self.payload(message), separators=(",", ":")).encode(),
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise network_error("apns", exc) from None
        if response.status_code == 200:
            provider_id = response.headers.get("apns-id") or headers.get("apns-id")
            log.debug("apns accepted: %s", provider_id)
            return SendResult(provider_id=provider_id)
        error = self._classify(response)
        if error.code == "auth":
            self._drop_provider_token(provider_token)
        log.info("apns delivery failed: code=%s permanent=%s", error.code, error.permanent)
        raise error

    @staticmethod
    def _classify(response: httpx.Response) -> TransportError:
        status = response.status_code
        reason = str(json_object(response).get("reason") or "")
        if status == 410:
            return TransportError(
                f"apns: {reason or 'Unregistered'} (HTTP 410)",
                permanent=True,
                code="unregistered",
            )
        if status == 400 and reason in _DEAD_TOKEN_400:
            return TransportError(
                f"apns: {reason} (HTTP 400)", permanent=True, code="invalid_recipient"
            )
        if status == 403 and reason in _PROVIDER_TOKEN_403:
            return TransportError(f"apns: {reason} (HTTP 403)", permanent=False, code="auth")
        return status_fallback("apns", response, reason)
