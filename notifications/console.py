"""Development transport: one masked line per notification on a text stream.

Lets the backend run without provider accounts while still showing that a
reminder would have gone out.  The recipient is masked (``+33******78``,
``m***@example.org``) and the body is never printed, so development logs do
not collect patients' contact details or message text.
"""

from __future__ import annotations

import sys
import threading
import uuid
from typing import TextIO

from .base import Message, SendResult, mask_recipient

__all__ = ["ConsoleTransport"]


class ConsoleTransport:
    """Print ``[notify:<channel>] to=<masked> title=... link=... id=...``."""

    def __init__(self, channel: str = "console", stream: TextIO | None = None) -> None:
        self.channel = channel
        self._stream = stream
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConsoleTransport(channel={self.channel!r})"

    def send(self, message: Message) -> SendResult:
        provider_id = f"console-{uuid.uuid4()}"
        line = (
            f"[notify:{self.channel}] to={mask_recipient(message.to)} "
            f"title={message.title!r} link={message.link or '-'} id={provider_id}\n"
        )
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            stream.write(line)
            stream.flush()
        return SendResult(provider_id=provider_id)
