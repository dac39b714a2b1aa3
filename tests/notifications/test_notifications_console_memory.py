"""Development and test transports."""

from __future__ import annotations

import io
import threading

import pytest

from notifications import (
    ConsoleTransport,
    MemoryTransport,
    Message,
    TransportError,
)


def test_console_prints_one_line_with_the_recipient_masked() -> None:
    stream = io.StringIO()
    console = ConsoleTransport("sms", stream=stream)
    result = console.send(
        Message(
            to="+33612345678",
            title="Questionnaire due",
            body="How is your pain today?",
            link="https://app.clinic.example/a/1",
        )
    )

    [line] = stream.getvalue().splitlines()
    assert "[notify:sms]" in line
    assert "+33*******78" in line and "612345" not in line
    assert "Questionnaire due" in line
    assert "https://app.clinic.example/a/1" in line
    assert "pain" not in line
    assert str(result.provider_id).startswith("console-")
    assert result.provider_id in line


def test_console_masks_email_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleTransport().send(Message(to="marie@example.org", title="Hi", body="b"))
    out = capsys.readouterr().out
    assert "m***@example.org" in out and "marie" not in out


def test_memory_records_what_was_sent() -> None:
    memory = MemoryTransport("push")
    message = Message(to="token-1", title="t", body="b")
    result = memory.send(message)
    assert memory.sent == [message]
    assert result.provider_id == "push-1"


def test_memory_fails_the_next_sends_as_scripted() -> None:
    memory = MemoryTransport("email")
    outage = TransportError("down", permanent=False, code="unavailable")
    memory.fail_next(outage, times=2)
    message = Message(to="a@example.org", title="t", body="b")

    for _ in range(2):
        with pytest.raises(TransportError) as caught:
            memory.send(message)
        assert caught.value is outage
    memory.send(message)

    assert memory.sent == [message]
    assert len(memory.attempts) == 3


def test_memory_fails_a_given_recipient_until_cleared() -> None:
    memory = MemoryTransport("sms")
    dead = TransportError("dead", permanent=True, code="invalid_recipient")
    memory.fail_for("+15005550001", dead)

    with pytest.raises(TransportError) as caught:
        memory.send(Message(to="+15005550001", title="t", body="b"))
    assert caught.value.permanent is True
    memory.send(Message(to="+33612345678", title="t", body="b"))

    memory.clear_failures()
    memory.send(Message(to="+15005550001", title="t", body="b"))
    assert [m.to for m in memory.sent] == ["+33612345678", "+15005550001"]


def test_memory_is_safe_to_use_from_several_threads() -> None:
    memory = MemoryTransport()
    memory.fail_next(TransportError("x", permanent=False), times=50)
    failures: list[TransportError] = []

    def worker() -> None:
        for i in range(100):
            try:
                memory.send(Message(to=f"t{i}", title="t", body="b"))
            except TransportError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(failures) == 50
    assert len(memory.sent) == 350
    ids = {memory.send(Message(to="x", title="t", body="b")).provider_id}
    assert ids == {"memory-351"}
