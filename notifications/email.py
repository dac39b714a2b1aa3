"""E-mail over SMTP (smtplib), for staff e-mails and patient reminders.

Classification follows RFC 5321 section 4.2.1: ``4yz`` replies are transient
and ``5yz`` replies are permanent *for the command they answer*.  Only a
``5yz`` on ``RCPT TO`` says something about the recipient, so only that
disables an address, with two exceptions:

* ``552`` on RCPT (mailbox full / too many recipients): RFC 5321 section
  4.5.3.1.10 tells clients to treat it as temporary.
* enhanced status ``5.7.x`` (RFC 3463: security or policy, e.g. "relay access
  denied"): usually *our* relay configuration; it would otherwise disable every
  patient's address at once.

Authentication failures (``535``, RFC 4954) are our credentials: transient,
``code="auth"``.  Connection refused, timeouts, TLS failures and dropped
connections are transient, ``code="unavailable"``.

The ``Message-ID`` is derived from ``Message.idempotency_key`` (``<key@domain>``)
so retries of one delivery carry the same id and recipients' mail systems can
thread or dedupe them; it is also the returned ``provider_id``.  SMTP replies are
never copied into errors because servers echo the recipient address in them.

``session()`` sends a batch over one connection (:class:`SmtpSession`): the
connection, TLS handshake and ``AUTH`` happen once per batch instead of once per
message.  A refused recipient or message leaves the connection usable (smtplib
resets the transaction); a dropped connection fails only the message in flight,
which the server did not accept, and the next message reconnects.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import logging
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from .base import Message, SendResult, TransportError

__all__ = ["Rendered", "SmtpSession", "SmtpTransport"]

log = logging.getLogger(__name__)

_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")

# A header value never holds a line break or a control character (it would start a header of its
# own): an address with one is refused, our delivery id has them replaced.
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=256)
def _encoded_subject(title: str) -> str:
    """The subject RFC 2047 encoded (UTF-8, folded under 78 columns): a batch of reminders has
    one title per language, so each is encoded once."""
    return Header(title, "utf-8", header_name="Subject").encode(linesep="\r\n")


@dataclass(frozen=True)
class Rendered:
    """An e-mail ready for the wire: envelope and RFC 5322 bytes (CRLF line ends)."""

    from_addr: str  # envelope sender (the bare address)
    to: str
    message_id: str
    data: bytes


class SmtpTransport:
    """Send plain-text e-mail through an SMTP relay.

    ``starttls`` upgrades a plain connection (port 587) with ``STARTTLS``;
    ``use_ssl`` uses implicit TLS instead (port 465).  Both verify the server
    certificate with ``ssl.create_default_context()`` unless ``ssl_context`` is
    given.  ``AUTH`` is used when ``username`` is set.
    """

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_addr: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 10.0,
        use_ssl: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.from_addr = from_addr
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout
        self.use_ssl = use_ssl
        self._ssl_context = ssl_context
        name, address = parseaddr(from_addr)
        self._envelope_from = address or from_addr
        self._from_header = formataddr((name, address), charset="utf-8") if address else from_addr
        self._msgid_domain = address.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:
        return f"SmtpTransport(host={self.host!r}, port={self.port!r})"

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def message_id(self, message: Message) -> str:
        """The ``Message-ID`` used for ``message`` (stable per idempotency key)."""
        if message.idempotency_key:
            local = _MSGID_UNSAFE.sub("-", message.idempotency_key).strip(".") or "x"
            return f"<{local}@{self._msgid_domain}>"
        return make_msgid(domain=self._msgid_domain)

    def build(self, message: Message) -> Rendered:
        """The RFC 5322 message that :meth:`send` would transmit.

        An ASCII address (nearly every one) gets a message written out directly: fixed ASCII
        headers, the subject RFC 2047 encoded once per distinct title, the body UTF-8
        quoted-printable (``binascii``), about ten times cheaper than flattening it through
        ``email``'s generator, which was a sixth of a scheduler's time per reminder. An address
        outside ASCII (RFC 6531) goes through ``EmailMessage`` with raw UTF-8 headers, sent with
        SMTPUTF8.
        """
        text = message.body
        if message.link:
            text = f"{text.rstrip()}\n\n{message.link}"
        message_id = self.message_id(message)
        if _HEADER_UNSAFE.search(message.to):
            raise TransportError(
                "email: the address holds a line break or a control character",
                permanent=True,
                code="invalid_recipient",
            )
        delivery_id = _HEADER_UNSAFE.sub("-", message.idempotency_key or "")
        if message.to.isascii():
            headers = [
                'Content-Type: text/plain; charset="utf-8"',
                "MIME-Version: 1.0",
                "Content-Transfer-Encoding: quoted-printable",
                f"Subject: {_encoded_subject(message.title)}",
                f"From: {self._from_header}",
                f"To: {message.to}",
                f"Date: {formatdate(usegmt=True)}",
                f"Message-ID: {message_id}",
            ]
            if delivery_id:
                headers.append(f"X-Delivery-Id: {delivery_id}")
            lines = text.replace("\r\n", "\n").replace("\r", "\n") + "\n"
            body = binascii.b2a_qp(lines.encode("utf-8"), istext=True)
            data = "\r\n".join(headers).encode("ascii") + b"\r\n\r\n"
            data += body.replace(b"\n", b"\r\n")
        else:
            msg = EmailMessage(policy=SMTPUTF8)
            msg.set_content(text + "\n")
            msg["Subject"] = message.title
            msg["From"] = self.from_addr
            msg["To"] = message.to
            msg["Date"] = formatdate(usegmt=True)
            msg["Message-ID"] = message_id
            if delivery_id:
                msg["X-Delivery-Id"] = delivery_id
            data = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return Rendered(
            from_addr=self._envelope_from, to=message.to, message_id=message_id, data=data
        )

    def send(self, message: Message) -> SendResult:
        with self.session() as session:
            return session.send(message)

    def session(self) -> SmtpSession:
        """A batch of sends over one connection (opened on the first send)."""
        return SmtpSession(self)

    def _connect(self) -> smtplib.SMTP:
        """An open, greeted (and upgraded, authenticated) connection; TransportError if not."""
        smtp: smtplib.SMTP | None = None
        try:
            if self.use_ssl:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.starttls and not self.use_ssl:
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self._password or "")
            return smtp
        except BaseException:
            if smtp is not None:
                smtp.close()
            raise


class SmtpSession:
    """Messages sent one after the other over one SMTP connection (see the module docstring)."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self._smtp: smtplib.SMTP | None = None
        self.connections = 0  # connections opened so far (one per batch unless one dropped)

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, message: Message) -> SendResult:
        msg = self.transport.build(message)
        message_id = msg.message_id
        try:
            _classified(self._send, msg)
        except TransportError as exc:
            log.info("smtp delivery failed: code=%s permanent=%s", exc.code, exc.permanent)
            raise
        log.debug("smtp delivery accepted: %s", message_id)
        return SendResult(provider_id=message_id)

    def _send(self, msg: Rendered) -> None:
        if self._smtp is None:
            self._smtp = self.transport._connect()
            self.connections += 1
        try:
            # An address outside ASCII needs the server's SMTPUTF8 (smtplib refuses without it).
            international = not (msg.from_addr + msg.to).isascii()
            if not international and self._smtp.has_extn("pipelining"):
                _pipelined(self._smtp, msg)
            else:
                options = ("SMTPUTF8", "BODY=8BITMIME") if international else ()
                self._smtp.sendmail(msg.from_addr, [msg.to], msg.data, mail_options=options)
        except smtplib.SMTPServerDisconnected:
            self._drop()
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            raise
        except smtplib.SMTPException:
            # Refused recipients: the transaction was reset and the connection stands, unless
            # the server closed it (a 421 to RCPT): then the next message reconnects.
            if self._smtp is not None and self._smtp.sock is None:
                self._drop()
            raise
        except OSError:  # the socket itself failed (reset, timeout): not reusable
            self._drop()
            raise

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


# A bare addr-spec (nearly every address): written between angle brackets as it is. Anything
# else (a display name, a comment, quotes) goes through smtplib's own ``quoteaddr``.
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\\",;:@]+@[^\s<>()\[\]\\\",;:@]+")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _path(address: str) -> str:
    return f"<{address}>" if _BARE_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _pipelined(smtp: smtplib.SMTP, msg: Rendered) -> None:
    """``sendmail`` for one ASCII recipient in two round trips instead of four (RFC 2920, when
    the server announces ``PIPELINING``): ``MAIL``, ``RCPT`` and ``DATA`` go in one write and
    their three replies are read in order, then the message and its reply. It raises what
    ``sendmail`` raises for the same replies, after the same ``RSET`` (or, on a ``421``, with
    the connection closed as the server is closing it), so ``_classified`` reads both alike."""
    smtp.send(f"MAIL FROM:{_path(msg.from_addr)}\r\nRCPT TO:{_path(msg.to)}\r\nDATA\r\n")
    mail = smtp.getreply()
    if mail[0] == 421:
        smtp.close()
        raise smtplib.SMTPSenderRefused(*mail, msg.from_addr)
    rcpt = smtp.getreply()
    if rcpt[0] == 421:
        smtp.close()
        raise smtplib.SMTPRecipientsRefused({msg.to: rcpt})
    data = smtp.getreply()
    if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
        # A server that took DATA although MAIL or RCPT failed gets an empty message, ended
        # at once (RFC 2920 section 3.1); it has no recipient to deliver it to.
        smtp.send(".\r\n")
        smtp.getreply()
    if mail[0] != 250:
        _reset(smtp)
        raise smtplib.SMTPSenderRefused(*mail, msg.from_addr)
    if rcpt[0] not in (250, 251):
        _reset(smtp)
        raise smtplib.SMTPRecipientsRefused({msg.to: rcpt})
    if data[0] != 354:
        _settle(smtp, data)
        raise smtplib.SMTPDataError(*data)
    body = _LEADING_DOT.sub(b"..", msg.data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    done = smtp.getreply()
    if done[0] != 250:
        _settle(smtp, done)
        raise smtplib.SMTPDataError(*done)


def _settle(smtp: smtplib.SMTP, reply: tuple[int, bytes]) -> None:
    """After a refused transaction: closed on ``421`` (the server is closing), else reset."""
    if reply[0] == 421:
        smtp.close()
    else:
        _reset(smtp)


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPServerDisconnected):  # the next send reconnects
        smtp.rset()


def _classified(send: Callable[[Rendered], None], msg: Rendered) -> None:
    """Run ``send(msg)``, turning smtplib's and the socket's errors into TransportError."""
    try:
        send(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise _classify_rcpt(list(exc.recipients.values())) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportError(
            f"smtp: authentication failed ({exc.smtp_code})",
            permanent=False,
            code="auth",
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise TransportError(
            "smtp: server does not support STARTTLS/AUTH as configured",
            permanent=False,
            code="config",
        ) from None
    except smtplib.SMTPSenderRefused as exc:
        raise TransportError(
            f"smtp: sender refused ({exc.smtp_code})",
            permanent=False,
            code="config" if exc.smtp_code >= 500 else "unavailable",
        ) from None
    except smtplib.SMTPDataError as exc:
        raise TransportError(
            f"smtp: message refused at DATA ({exc.smtp_code})",
            permanent=False,
            code="rejected" if exc.smtp_code >= 500 else "unavailable",
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise TransportError(
            f"smtp: unexpected reply ({exc.smtp_code})",
            permanent=False,
            code="unavailable",
        ) from None
    except ssl.SSLCertVerificationError:
        raise TransportError(
            "smtp: server certificate verification failed",
            permanent=False,
            code="config",
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        # SMTPServerDisconnected, ConnectionRefusedError, TimeoutError, SSLError...
        raise TransportError(
            f"smtp: connection failed ({type(exc).__name__})",
            permanent=False,
            code="unavailable",
        ) from None


def _classify_rcpt(replies: list[tuple[int, bytes]]) -> TransportError:
    codes = sorted({code for code, _ in replies})
    label = ",".join(str(c) for c in codes)
    transient = [c for c, _ in replies if c < 500]
    if transient:
        return TransportError(
            f"smtp: recipient temporarily refused ({label})",
            permanent=False,
            code="unavailable",
        )
    if any(code == 552 for code, _ in replies):
        return TransportError(
            f"smtp: recipient mailbox full ({label})", permanent=False, code="rejected"
        )
    if any(_is_policy(text) for _, text in replies):
        return TransportError(
            f"smtp: recipient refused by relay policy ({label})",
            permanent=False,
            code="config",
        )
    return TransportError(
        f"smtp: recipient refused ({label})", permanent=True, code="invalid_recipient"
    )


def _is_policy(text: bytes) -> bool:
    match = _ENHANCED.match(text)
    return bool(match and match.group(2) == b"7")
