"""A minimal SMTP server for the reminder benchmark: it accepts every message and notes, per
recipient, when each arrived.

Why not aiosmtpd, which the tests use: on the 2-core reference machine, aiosmtpd spent 0.8 ms of
CPU per message (a coroutine, a handler hook and a drain per command), a third of the machine's
whole budget per reminder, on the same cores as the schedulers it measures. A production relay
runs elsewhere. This one is an ``asyncio.Protocol`` that answers each batch of commands with one
write: about a tenth of that. It speaks enough of RFC 5321 for ``smtplib`` (EHLO/HELO, MAIL,
RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT) and announces PIPELINING (RFC 2920), as relays
do. It checks nothing: a benchmark's stand-in, never a test's (those use aiosmtpd).
"""

from __future__ import annotations

import asyncio
import threading
import time

_EHLO = b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
_END = b"\r\n.\r\n"


class _Session(asyncio.Protocol):
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.buffer = b""
        self.in_data = False
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                # The message ends at a line holding one dot (RFC 5321 section 4.1.1.4).
                if self.buffer.startswith(b".\r\n"):  # an empty message
                    cut = 3
                else:
                    end = self.buffer.find(_END)
                    if end == -1:
                        break
                    cut = end + len(_END)
                self.buffer = self.buffer[cut:]
                self.in_data = False
                self.sink.arrived(self.recipients)
                self.recipients = []
                replies.append(b"250 OK\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(_EHLO)
            elif verb == b"MAIL":
                self.recipients = []
                replies.append(b"250 OK\r\n")
            elif verb == b"RCPT":
                address = line[line.find(b"<") + 1 : line.rfind(b">")]
                self.recipients.append(address.decode("utf-8", "replace"))
                replies.append(b"250 OK\r\n")
            elif verb == b"DATA":
                self.in_data = True
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 Bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            elif verb in (b"HELO", b"RSET", b"NOOP"):
                if verb == b"RSET":
                    self.recipients = []
                replies.append(b"250 OK\r\n")
            else:
                replies.append(b"502 Command not implemented\r\n")
        if replies:
            self.transport.write(b"".join(replies))


class SmtpSink:
    """The server on its own event loop in a thread: ``start()``, ``stop()``; ``arrivals`` maps
    each recipient to the ``time.monotonic()`` of every message it got (under ``lock``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.arrivals: dict[str, list[float]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def arrived(self, recipients: list[str]) -> None:
        now = time.monotonic()
        with self.lock:
            for address in recipients:
                self.arrivals.setdefault(address, []).append(now)

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(lambda: _Session(self), self.host, self.port),
            self._loop,
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
