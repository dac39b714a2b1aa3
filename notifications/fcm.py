"""Android (and iOS via Firebase) push through the FCM HTTP v1 API.

References (Firebase documentation):

* ``POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send``
  with an OAuth2 access token for the scope
  ``https://www.googleapis.com/auth/firebase.messaging``, obtained from a
  service account by the JWT-bearer grant (RFC 7523) at the key's ``token_uri``.
  Success is ``200 {"name": "projects/.../messages/..."}``.
* Errors (reference/fcm/rest/v1/ErrorCode, cloud-messaging/error-codes) are
  Google API errors: ``{"error": {"code", "message", "status", "details":
  [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
  "errorCode": "UNREGISTERED"}, {"@type": "...google.rpc.BadRequest",
  "fieldViolations": [...]}]}}``.
  ``UNREGISTERED`` (404) means the app instance is gone: drop the token (a
  404 that is not a Google JSON error, e.g. a wrong endpoint, is ``config``).
  ``INVALID_ARGUMENT`` (400) is only the token's fault when the violation
  names ``message.token`` or the message says the registration token is
  invalid; otherwise it is our payload.  ``QUOTA_EXCEEDED`` (429),
  ``UNAVAILABLE`` (503) and ``INTERNAL`` (500) are retried honouring
  ``Retry-After``.  ``THIRD_PARTY_AUTH_ERROR`` (401) and ``SENDER_ID_MISMATCH``
  (403), like any 401/403, concern our credentials or project: ``code="auth"``.

Access tokens are refreshed through an httpx adapter for
``google.auth.transport.Request`` (no ``requests`` dependency) and reused until
google-auth considers them expired.  ``credentials.before_request`` is not used
on purpose: it may start background lookups against Google endpoints.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth.exceptions
import google.auth.transport
import httpx
from google.auth.credentials import Credentials
from google.oauth2 import service_account

from ._http import USER_AGENT, json_object, network_error, retry_after, status_fallback
from .apns import apns_collapse_id
from .base import Message, SendResult, TransportError

__all__ = ["FCM_SCOPE", "FcmTransport"]

log = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


class _AuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpxAuthRequest(google.auth.transport.Request):
    """``google.auth.transport.Request`` implemented with an ``httpx.Client``."""

    def __init__(self, client: httpx.Client, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _AuthResponse:
        try:
            response = self._client.request(
                method,
                url,
                content=body,
                headers=dict(headers or {}),
                timeout=timeout if timeout is not None else self._timeout,
            )
        except httpx.HTTPError as exc:
            raise google.auth.exceptions.TransportError(type(exc).__name__) from None  # type: ignore[no-untyped-call]
        return _AuthResponse(response)


class FcmTransport:
    """Send push notifications with FCM HTTP v1."""

    channel = "push"

    def __init__(
        self,
        project_id: str,
        credentials: Credentials,
        *,
        endpoint: str = "https://fcm.googleapis.com",
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.project_id = project_id
        self._credentials = credentials
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT})
        self._auth_request = HttpxAuthRequest(self._http, timeout)
        self._lock = threading.Lock()
        self._force_refresh = False
        self.url = f"{self.endpoint}/v1/projects/{quote(project_id, safe='')}/messages:send"

    @classmethod
    def from_service_account(
        cls,
        info: Mapping[str, Any],
        project_id: str | None = None,
        *,
        endpoint: str = "https://fcm.googleapis.com",
        token_uri: str | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> FcmTransport:
        """Build from a service-account JSON key (already parsed).

        ``token_uri`` overrides the key's OAuth2 token endpoint (tests point it
        at a local stand-in); ``project_id`` defaults to the key's.
        """
        info = dict(info)
        if token_uri is not None:
            info["token_uri"] = token_uri
        project = project_id or info.get("project_id")
        if not project:
            raise ValueError("project_id is required (not in the service-account info)")
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[FCM_SCOPE]
        )
        return cls(str(project), credentials, endpoint=endpoint, timeout=timeout, http=http)

    def __repr__(self) -> str:
        return f"FcmTransport(project_id={self.project_id!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _access_token(self) -> str:
        with self._lock:
            creds = self._credentials
            if self._force_refresh or not creds.valid or not creds.token:
                try:
                    creds.refresh(self._auth_request)  # type: ignore[no-untyped-call]
                except google.auth.exceptions.TransportError:
                    raise TransportError(
                        "fcm: token endpoint unreachable",
                        permanent=False,
                        code="unavailable",
                    ) from None
                except google.auth.exceptions.RefreshError as exc:
                    retryable = bool(getattr(exc, "retryable", False))
                    raise TransportError(
                        "fcm: could not obtain an access token",
                        permanent=False,
                        code="unavailable" if retryable else "auth",
                    ) from None
                self._force_refresh = False
            return str(creds.token)

    def payload(self, message: Message) -> dict[str, Any]:
        """The JSON body :meth:`send` posts for ``message``."""
        data = dict(message.data)
        if message.link:
            data["link"] = message.link
        body: dict[str, Any] = {
            "token": message.to,
            "notification": {"title": message.title, "body": message.body},
        }
        if data:
            body["data"] = data
        if message.collapse_key:
            body["android"] = {"collapse_key": message.collapse_key}
            body["apns"] = {"headers": {"apns-collapse-id": apns_collapse_id(message.collapse_key)}}
        return {"message": body}

    def send(self, message: Message) -> SendResult:
        token = self._access_token()
        try:
            response = self._http.post(
                self.url,
                content=json.dumps(self.payload(message)).encode(),
                headers={
                    "authorization": f"Bearer {token}",
                    "content-type": "application/json; charset=utf-8",
                },
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise network_error("fcm", exc) from None
        if response.status_code == 200:
            name = json_object(response).get("name")
            log.debug("fcm accepted: %s", name)
            return SendResult(provider_id=str(name) if name else None)
        error = self._classify(response)
        if error.code == "auth":
            with self._lock:
                self._force_refresh = True
        log.info("fcm delivery failed: code=%s permanent=%s", error.code, error.permanent)
        raise error

    @staticmethod
    def _classify(response: httpx.Response) -> TransportError:
        status = response.status_code
        error = json_object(response).get("error")
        error = error if isinstance(error, dict) else {}
        rpc_status = str(error.get("status") or "")
        details = error.get("details")
        details = details if isinstance(details, list) else []
        fcm_code = ""
        token_field = False
        for detail in details:
            if not isinstance(detail, dict):
                continue
            if detail.get("@type") == _FCM_ERROR_TYPE:
                fcm_code = str(detail.get("errorCode") or "")
            elif detail.get("@type") == _BAD_REQUEST_TYPE:
                violations = detail.get("fieldViolations")
                for violation in violations if isinstance(violations, list) else []:
                    if isinstance(violation, dict) and violation.get("field") == "message.token":
                        token_field = True
        reason = fcm_code or rpc_status
        label = f"{reason} " if reason else ""

        # A 404 is the token only when FCM itself says so (a Google JSON error);
        # an HTML 404 from a wrong endpoint/proxy must not disable every token.
        if fcm_code == "UNREGISTERED" or (status == 404 and rpc_status == "NOT_FOUND"):
            return TransportError(
                f"fcm: {label}(HTTP {status})", permanent=True, code="unregistered"
            )
        if status == 400 and (fcm_code or rpc_status) == "INVALID_ARGUMENT":
            message_text = str(error.get("message") or "").lower()
            if token_field or "registration token" in message_text:
                return TransportError(
                    f"fcm: {label}token (HTTP {status})",
                    permanent=True,
                    code="invalid_recipient",
                )
        if fcm_code == "QUOTA_EXCEEDED" and status != 429:
            return TransportError(
                f"fcm: {label}(HTTP {status})",
                permanent=False,
                retry_after=retry_after(response),
                code="rate_limited",
            )
        return status_fallback("fcm", response, reason)
