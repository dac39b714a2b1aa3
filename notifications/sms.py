"""SMS through the Twilio Programmable Messaging REST API.

References (Twilio documentation, "Message resource", "Twilio API responses",
"Error and Warning Dictionary"):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded,
  HTTP Basic auth ``AccountSid:AuthToken``, fields ``To``, ``Body`` and either
  ``From`` or ``MessagingServiceSid``.  Success is ``201`` with the Message
  resource (``sid`` ``SM...``).
* Errors are ``{"code": 21211, "message": "...", "more_info":
  "https://www.twilio.com/docs/errors/21211", "status": 400}``.  Number-specific
  codes disable the number: 21211 invalid ``To``, 21614 not a mobile number,
  21217 number not valid, and 21610 (recipient replied STOP) as ``opted_out``.
  21408 (region not enabled) and other 4xx are our configuration
  (``code="config"``); 401 / 20003 is our credentials (``code="auth"``); 429
  (20429) and 5xx are retried honouring ``Retry-After``.

Twilio's ``message`` text echoes the phone number, so only the numeric code is
kept in errors.
"""

from __future__ import annotations

import logging

import httpx

from ._http import USER_AGENT, json_object, network_error, status_fallback
from .base import Message, SendResult, TransportError

__all__ = ["TwilioSmsTransport"]

log = logging.getLogger(__name__)

#: Twilio error codes that mean this phone number can never receive our SMS.
PERMANENT_CODES: dict[int, str] = {
    21211: "invalid_recipient",  # Invalid 'To' phone number
    21217: "invalid_recipient",  # Phone number does not appear to be valid
    21614: "invalid_recipient",  # 'To' number is not a valid mobile number
    21610: "opted_out",  # Attempt to send to unsubscribed recipient (STOP)
}


class TwilioSmsTransport:
    """Send SMS with Twilio; give ``from_number`` or ``messaging_service_sid``."""

    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        *,
        messaging_service_sid: str | None = None,
        endpoint: str = "https://api.twilio.com",
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError("give exactly one of from_number or messaging_service_sid")
        self.account_sid = account_sid
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT})
        self.url = f"{self.endpoint}/2010-04-01/Accounts/{account_sid}/Messages.json"

    def __repr__(self) -> str:
        return f"TwilioSmsTransport(account_sid={self.account_sid!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def form(self, message: Message) -> dict[str, str]:
        """The form fields :meth:`send` posts for ``message``."""
        text = message.body.rstrip()
        if message.link:
            text = f"{text}\n{message.link}"
        fields = {"To": message.to, "Body": text}
        if self.messaging_service_sid:
            fields["MessagingServiceSid"] = self.messaging_service_sid
        else:
            fields["From"] = str(self.from_number)
        return fields

    def send(self, message: Message) -> SendResult:
        try:
            response = self._http.post(
                self.url,
                data=self.form(message),
                auth=self._auth,
                headers={"accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise network_error("twilio", exc) from None
        if response.status_code in (200, 201):
            sid = json_object(response).get("sid")
            log.debug("twilio accepted: %s", sid)
            return SendResult(provider_id=str(sid) if sid else None)
        error = self._classify(response)
        log.info("twilio delivery failed: code=%s permanent=%s", error.code, error.permanent)
        raise error

    @staticmethod
    def _classify(response: httpx.Response) -> TransportError:
        status = response.status_code
        raw = json_object(response).get("code")
        twilio_code: int | None = None
        if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
            twilio_code = int(raw)
        label = f"error {twilio_code} " if twilio_code is not None else ""
        if twilio_code is not None and twilio_code in PERMANENT_CODES and status < 500:
            return TransportError(
                f"twilio: {label}(HTTP {status})",
                permanent=True,
                code=PERMANENT_CODES[twilio_code],
            )
        if twilio_code == 20003:
            return TransportError(f"twilio: {label}(HTTP {status})", permanent=False, code="auth")
        return status_fallback("twilio", response, label.strip())
