"""The reminder pipeline's pace in a busy minute: the first reminders leave after a small batch,
the rest in batches that double up to ``SCHEDULER_BATCH_SIZE``; each patient reached once."""

from __future__ import annotations

import pytest

from backend.notify.channels import install_channels
from backend.schedule import worker
from backend.schedule.worker import run_pass
from notifications import MemoryTransport, Message, SendResult
from tests.schedule.test_statement_budgets import due_patients


class BatchRecordingTransport(MemoryTransport):
    """A provider stand-in that keeps how many messages each batch session carried."""

    def __init__(self) -> None:
        super().__init__("email")
        self.batches: list[int] = []

    def session(self) -> BatchRecordingTransport._Session:
        self.batches.append(0)
        return self._Session(self)

    class _Session:
        def __init__(self, transport: BatchRecordingTransport) -> None:
            self.transport = transport

        def send(self, message: Message) -> SendResult:
            result = self.transport.send(message)
            self.transport.batches[-1] += 1
            return result

        def close(self) -> None:
            pass


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SCHEDULER_BATCH_SIZE": 16}


def test_a_busy_minute_sends_a_small_first_batch_then_doubles_up_to_the_batch_size(
    app, nurse_ada, monkeypatch
):
    monkeypatch.setattr(worker, "PIPELINE_FIRST_BATCH", 4)
    email = BatchRecordingTransport()
    install_channels(app, {"email": email})
    due_patients(nurse_ada, 40)

    totals = run_pass()

    assert email.batches == [4, 8, 16, 12]
    assert sorted(m.to for m in email.sent) == sorted(f"patient{i}@example.org" for i in range(40))
    assert totals["open_questionnaires"] == 40
    assert totals["send_due_deliveries"] == 40


def test_without_a_busy_minute_the_first_batch_is_never_larger_than_the_batch_size(
    app, nurse_ada, monkeypatch
):
    monkeypatch.setattr(worker, "PIPELINE_FIRST_BATCH", 64)
    email = BatchRecordingTransport()
    install_channels(app, {"email": email})
    due_patients(nurse_ada, 20)

    run_pass()

    assert email.batches == [16, 4]
