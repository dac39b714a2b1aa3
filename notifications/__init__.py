"""Patient reminders and staff e-mails: one transport per channel.

This is a leaf library: it imports neither Flask, nor a database, nor
``backend``.  The backend builds transports from its configuration, turns its
own records into :class:`Message` objects and decides what to do with a
:class:`TransportError` (``permanent`` -> disable the contact point; otherwise
retry, after ``retry_after`` when given; ``code`` in :data:`ERROR_CODES`).
"""

from .apns import ApnsTransport
from .base import (
    ERROR_CODES,
    Message,
    SendResult,
    Session,
    Transport,
    TransportError,
    mask_recipient,
    open_session,
    parse_retry_after,
)
from .console import ConsoleTransport
from .email import SmtpSession, SmtpTransport
from .fcm import FcmTransport
from .memory import MemoryTransport
from .sms import TwilioSmsTransport

__all__ = [
    "ERROR_CODES",
    "ApnsTransport",
    "ConsoleTransport",
    "FcmTransport",
    "MemoryTransport",
    "Message",
    "SendResult",
    "Session",
    "SmtpSession",
    "SmtpTransport",
    "Transport",
    "TransportError",
    "TwilioSmsTransport",
    "mask_recipient",
    "open_session",
    "parse_retry_after",
]
