"""In-memory transport for tests of the backend's delivery logic.

Records what was sent and lets a test script failures (a provider outage, a
dead token) without any network, so retry/disable behaviour upstream can be
tested deterministically.  Thread-safe: the backend may send from workers.
"""

from __future__ import annotations

import itertools
import threading

from .base import Message, SendResult, TransportError

__all__ = ["MemoryTransport"]


class MemoryTransport:
    """Keep sent messages in :attr:`sent`; raise scripted :class:`TransportError`\\ s.

    ``fail_next(error, times)`` makes the next ``times`` sends raise ``error``
    (whatever the recipient); ``fail_for(to, error)`` makes every send to
    ``to`` raise ``error`` until ``clear_failures()``.  Scripted ``fail_next``
    failures are consumed before ``fail_for`` ones are considered.
    """

    def __init__(self, channel: str = "memory") -> None:
        self.channel = channel
        self.sent: list[Message] = []
        self.attempts: list[Message] = []
        self._lock = threading.Lock()
        self._next: list[TransportError] = []
        self._by_recipient: dict[str, TransportError] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"MemoryTransport(channel={self.channel!r}, sent={len(self.sent)})"

    def fail_next(self, error: TransportError, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._next.extend([error] * times)

    def fail_for(self, to: str, error: TransportError) -> None:
        with self._lock:
            self._by_recipient[to] = error

    def clear_failures(self) -> None:
        with self._lock:
            self._next.clear()
            self._by_recipient.clear()

    def reset(self) -> None:
        """Forget sent messages, attempts and scripted failures."""
        with self._lock:
            self.sent.clear()
            self.attempts.clear()
            self._next.clear()
            self._by_recipient.clear()

    def send(self, message: Message) -> SendResult:
        with self._lock:
            self.attempts.append(message)
            if self._next:
                raise self._next.pop(0)
            error = self._by_recipient.get(message.to)
            if error is not None:
                raise error
            self.sent.append(message)
            return SendResult(provider_id=f"{self.channel}-{next(self._ids)}")
