"""The one small interface every delivery channel implements.

Modelled on healthchecks/healthchecks' ``hc/api/transports.py``: each channel
(e-mail, FCM, APNs, SMS, console, memory) lives in its own module and exposes a
``send(message) -> SendResult`` that either succeeds or raises
:class:`TransportError`.  The error says *what the caller should do next*
rather than what went wrong at the wire level:

* ``permanent=True``: the recipient (address, push token, phone number) is dead.
  Do not retry; disable that contact point.
* ``permanent=False``: retry later, after ``retry_after`` seconds when the
  provider said so.  ``code`` tells operations why (see :data:`ERROR_CODES`);
  ``"auth"`` and ``"config"`` are *our* problem and must never disable a
  patient's contact point.

Why messages never contain recipients or bodies: reminders go to patients, so
addresses, phone numbers, push tokens and message text are personal (and often
health) data.  Nothing in this package logs them or copies them into exception
messages; provider error *texts* are not copied either, because providers echo
the recipient in them (Twilio: "Invalid 'To' Phone Number: +1...", SMTP:
"550 <user@example.org>: unknown").  Only status codes and provider enum
reasons are kept.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

__all__ = [
    "ERROR_CODES",
    "Message",
    "SendResult",
    "Session",
    "Transport",
    "TransportError",
    "mask_recipient",
    "open_session",
    "parse_retry_after",
]

#: Values of :attr:`TransportError.code` and what the backend should do with them.
ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        # permanent=True: disable the contact point
        "invalid_recipient": "address/number/token is malformed or does not exist",
        "unregistered": "push token no longer valid (app uninstalled, token rotated)",
        "opted_out": "recipient unsubscribed (SMS STOP); do not send again",
        # permanent=False: retry later, never disable the contact point
        "auth": "provider rejected OUR credentials; fix configuration, alert ops",
        "config": "provider rejected our request/configuration; retrying alone "
        "will not help until configuration or code changes, alert ops",
        "rate_limited": "provider throttled us; honour retry_after",
        "unavailable": "provider or network down, timeout, 5xx; retry with backoff",
        "rejected": "message refused for a reason that is not a dead recipient "
        "(SMTP: content refused at DATA, mailbox full); retry later",
    }
)


@dataclass(frozen=True, repr=False)
class Message:
    """One notification to one recipient on one channel.

    ``to`` is an e-mail address, an E.164 phone number or a push token,
    depending on the transport.  ``data`` is the push payload (string values
    only, as FCM requires).  ``collapse_key`` lets the push service replace an
    undelivered older notification with the same key (FCM ``collapse_key`` /
    APNs ``apns-collapse-id``).  ``idempotency_key`` is a stable id of this
    delivery, reused on retries; transports put it where the provider lets us
    correlate or dedupe (SMTP ``Message-ID``, APNs ``apns-id``).
    """

    to: str
    title: str
    body: str
    link: str | None = None
    data: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    collapse_key: str | None = None
    idempotency_key: str | None = None

    def __repr__(self) -> str:
        # Safe to log: no body, no title, masked recipient.
        return (
            f"Message(to={mask_recipient(self.to)!r}, "
            f"idempotency_key={self.idempotency_key!r}, "
            f"collapse_key={self.collapse_key!r})"
        )


@dataclass(frozen=True)
class SendResult:
    """What the provider told us about an accepted message."""

    provider_id: str | None


class TransportError(Exception):
    """A delivery failed; the attributes say whether and when to retry."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.code = code

    def __repr__(self) -> str:
        return (
            f"TransportError({self.message!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after!r}, code={self.code!r})"
        )


@runtime_checkable
class Transport(Protocol):
    """A delivery channel.

    ``send`` raises :class:`TransportError` on failure, bounds every network
    call with a timeout, and never logs bodies, recipients or secrets.
    """

    channel: str

    def send(self, message: Message) -> SendResult: ...


@runtime_checkable
class Session(Protocol):
    """Several sends over one provider connection (a batch); ``close`` ends it.

    ``send`` behaves as :meth:`Transport.send`.  A connection lost in the middle
    of a batch fails that one message with a transient ``unavailable`` error
    (the provider did not accept it, so it is retried later, never sent twice)
    and the next send opens a new connection.
    """

    def send(self, message: Message) -> SendResult: ...

    def close(self) -> None: ...


class _OneByOne:
    """The session of a transport that has none of its own: each send on its own."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def send(self, message: Message) -> SendResult:
        return self._transport.send(message)

    def close(self) -> None:
        pass


def open_session(transport: Transport) -> Session:
    """A batch session on ``transport``: its own ``session()`` when it has one (SMTP reuses
    one connection), else sends one by one."""
    session = getattr(transport, "session", None)
    if callable(session):
        return session()  # type: ignore[no-any-return]
    return _OneByOne(transport)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` value (RFC 9110 section 10.2.3).

    Accepts both ``delay-seconds`` and an ``HTTP-date``; returns seconds from
    ``now`` (never negative), or ``None`` when absent or unparseable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return max(0.0, seconds)
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" style dates: treat as UTC (RFC 9110)
        return None
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


_E164 = re.compile(r"^\+?\d{6,15}$")


def mask_recipient(to: str) -> str:
    """Mask a recipient for logs.

    ``+33******78`` (phone), ``m***@example.org`` (e-mail), ``abcd…(64)`` (token).
    """
    to = to.strip()
    if "@" in to:
        local, _, domain = to.rpartition("@")
        return f"{local[:1]}***@{domain}"
    compact = re.sub(r"[\s().-]", "", to)
    if _E164.match(compact):
        digits = compact.lstrip("+")
        prefix = "+" if compact.startswith("+") else ""
        return f"{prefix}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"
    if len(to) <= 8:
        return "*" * len(to)
    return f"{to[:4]}…({len(to)})"
