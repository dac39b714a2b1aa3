"""The reminder ladder and the questionnaire windows, with the clock moved (never slept).

Marcel, 86, sacroiliac screws, lives in Lyon (Europe/Paris) and was discharged on 2026-11-22:
his day-1 check-in opens on 2026-11-23 at 10:00 local, which is T0 (09:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend import signals
from backend.extensions import db
from backend.notify.models import DeliveryAttempt
from backend.questionnaires import links
from backend.questionnaires.models import Assignment
from backend.schedule.models import Reminder
from backend.schedule.worker import run_pass
from notifications import TransportError
from tests.conftest import T0
from tests.factories import make_patient, make_procedure, record
from tests.notify.conftest import notifications_of

PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def day_one(procedure):
    return next(a for a in procedure.schedule if a.day == 1)


def reminders_of(assignment) -> list[Reminder]:
    return list(
        db.session.execute(
            db.select(Reminder).filter_by(assignment_id=assignment.id).order_by(Reminder.rung)
        ).scalars()
    )


def sent_times(channel) -> list[datetime]:
    """When each message the provider accepted was sent (from the attempts table)."""
    rows = db.session.execute(
        db.select(DeliveryAttempt.started_at)
        .filter_by(outcome="sent", channel=channel)
        .order_by(DeliveryAttempt.started_at)
    ).scalars()
    return list(rows)


def at(clock, when: datetime) -> dict[str, int]:
    clock.set(when)
    return run_pass()


def test_reminders_go_out_at_ten_local_then_a_day_and_two_days_later(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    assert assignment.opens_at == T0

    at(clock, T0 - timedelta(minutes=1))
    assert memory_channels.sms.sent == [] and assignment.status == "pending"
    for moment in (
        T0,
        T0 + timedelta(hours=23, minutes=59),
        T0 + timedelta(hours=24),
        T0 + timedelta(hours=47),
        T0 + timedelta(hours=48),
    ):
        at(clock, moment)
    at(clock, T0 + timedelta(hours=71, minutes=59))

    times = sent_times("sms")
    assert times == [T0, T0 + timedelta(hours=24), T0 + timedelta(hours=48)]
    assert {t.astimezone(PARIS).strftime("%H:%M") for t in times} == {"10:00"}
    messages = memory_channels.sms.sent
    assert [m.to for m in messages] == ["+33612345678"] * 3
    # Each SMS carries its own single-use web link to this questionnaire.
    tokens = {m.link.rsplit("/", 1)[1] for m in messages}
    assert len(tokens) == 3
    assert {links.open_link(t, now=T0).assignment.id for t in tokens} == {assignment.id}
    assert assignment.status == "open"


def test_no_reminder_once_the_questionnaire_is_answered(app, nurse_ada, clock, memory_channels):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    at(clock, T0)
    assert len(memory_channels.sms.sent) == 1

    record(marcel, T0 + timedelta(hours=3), assignment_id=assignment.id)
    at(clock, T0 + timedelta(hours=24))
    at(clock, T0 + timedelta(hours=48))
    at(clock, T0 + timedelta(days=4))

    assert len(memory_channels.sms.sent) == 1
    assert [(r.rung, r.status, r.reason) for r in reminders_of(assignment)] == [
        (0, "enqueued", None),
        (1, "skipped", "answered"),  # the last rung it carried is never written
    ]
    assert assignment.status == "completed"  # not missed: the window closing changes nothing


def test_a_reminder_answered_before_its_delivery_is_cancelled_not_sent(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    memory_channels.sms.fail_next(
        TransportError("twilio: 503", permanent=False, code="unavailable")
    )
    at(clock, T0)  # the SMS provider is down: the reminder waits for a retry
    record(marcel, T0 + timedelta(minutes=5), assignment_id=assignment.id)
    at(clock, T0 + timedelta(hours=1))

    assert memory_channels.sms.sent == []
    (notification,) = notifications_of(marcel.id)
    assert (notification.status, notification.status_reason) == ("cancelled", "answered")


def test_a_reminder_that_would_fall_in_quiet_hours_waits_for_them_to_end(
    app, nurse_ada, clock, memory_channels
):
    # Léonie, 79, was planned on Paris time, then her zone was corrected to Martinique (UTC-4):
    # her questionnaire opens at 05:00 her time, inside the quiet hours (21:00-08:00).
    leonie = make_patient(nurse_ada, given_name="Léonie", contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, leonie))
    leonie.timezone = "America/Martinique"
    db.session.commit()
    martinique = ZoneInfo("America/Martinique")

    at(clock, T0)  # 05:00 in Fort-de-France
    assert assignment.status == "open" and memory_channels.sms.sent == []
    eight = utc(2026, 11, 23, 12, 0)
    assert eight.astimezone(martinique).strftime("%H:%M") == "08:00"
    at(clock, eight - timedelta(minutes=1))
    assert memory_channels.sms.sent == []
    at(clock, eight)
    at(clock, eight + timedelta(hours=24))
    at(clock, eight + timedelta(hours=48))

    assert sent_times("sms") == [eight, eight + timedelta(hours=24), eight + timedelta(hours=48)]


def test_a_retry_that_would_land_in_quiet_hours_waits_for_them_to_end(
    app, nurse_ada, clock, memory_channels
):
    # A site that reminds in the evening: at 20:50, quiet from 21:00. The first reminder is
    # refused by the SMS provider (try again in 15 minutes): its retry would land at 21:05 and
    # waits for 08:00 instead.
    app.config["REMINDER_LOCAL_TIME"] = datetime.strptime("20:50", "%H:%M").time()
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    opens = utc(2026, 11, 23, 19, 50)  # 20:50 in Paris
    assert assignment.opens_at == opens
    memory_channels.sms.fail_next(
        TransportError("twilio: 429", permanent=False, retry_after=900, code="rate_limited")
    )

    at(clock, opens)
    at(clock, opens + timedelta(minutes=15))  # 21:05: quiet
    assert memory_channels.sms.sent == []
    at(clock, utc(2026, 11, 24, 7, 0))  # 08:00 in Paris
    assert sent_times("sms") == [utc(2026, 11, 24, 7, 0)]


def test_reminders_stay_at_ten_local_across_the_end_of_summer_time(
    app, nurse_ada, clock, memory_channels
):
    # Josette, 91, vertebroplasty, discharged in Paris on 2026-10-23: her day-1 questionnaire
    # opens on Saturday 24 October at 10:00 CEST; summer time ends on Sunday 25 at 03:00.
    start = utc(2026, 10, 23, 12, 0)
    clock.set(start)
    josette = make_patient(nurse_ada, start, given_name="Josette", contact_channels=["sms"])
    procedure = make_procedure(
        nurse_ada,
        josette,
        start,
        kind="cementoplasty",
        location="vertebra",
        performed_on=date(2026, 10, 22),
        discharged_on=date(2026, 10, 23),
    )
    assignment = day_one(procedure)
    assert assignment.opens_at == utc(2026, 10, 24, 8, 0)  # UTC+2

    hour = start
    while hour < assignment.closes_at:  # a pass every hour for three days
        at(clock, hour)
        hour += timedelta(hours=1)

    times = sent_times("sms")
    assert times == [utc(2026, 10, 24, 8, 0), utc(2026, 10, 25, 9, 0), utc(2026, 10, 26, 9, 0)]
    assert [t.astimezone(PARIS).strftime("%H:%M %Z") for t in times] == [
        "10:00 CEST",
        "10:00 CET",
        "10:00 CET",
    ]


@pytest.mark.parametrize("status", ["paused", "readmitted", "deceased", "withdrawn"])
def test_a_patient_who_is_not_active_gets_no_reminder(
    app, nurse_ada, clock, memory_channels, status
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    marcel.status = status
    db.session.commit()

    for hours in (0, 24, 48, 72):
        at(clock, T0 + timedelta(hours=hours))

    # It never opened, so it has no reminder; its window passed: not owed, not missed.
    assert memory_channels.all_sent() == []
    assert reminders_of(assignment) == []
    reason = f"passed_while_{status}" if status in ("paused", "readmitted") else f"patient_{status}"
    assert (assignment.status, assignment.status_reason) == ("cancelled", reason)


def test_a_paused_patient_who_resumes_gets_the_next_reminder(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    marcel.status = "paused"
    db.session.commit()
    at(clock, T0)
    marcel.status = "active"
    db.session.commit()
    at(clock, T0 + timedelta(hours=24))

    assert sent_times("sms") == [T0 + timedelta(hours=24)]


def test_a_reminder_is_not_delivered_once_the_patient_is_paused(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(TransportError("down", permanent=False, code="unavailable"))
    at(clock, T0)
    marcel.status = "paused"  # readmitted to hospital, say, while the retry waits
    db.session.commit()
    at(clock, T0 + timedelta(hours=1))

    assert memory_channels.sms.sent == []
    (notification,) = notifications_of(marcel.id)
    assert (notification.status, notification.status_reason) == ("cancelled", "patient_paused")


def test_windows_close_to_missed_and_the_missed_hooks_run_with_the_patient(
    app, nurse_ada, clock, memory_channels
):
    seen = []

    def missed(_app, *, assignment, patient, now):
        seen.append((assignment.id, patient.id, assignment.status, now))

    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))

    with signals.connected(signals.questionnaire_missed, missed, app):
        at(clock, assignment.closes_at - timedelta(seconds=1))
        assert assignment.status == "open" and seen == []
        at(clock, assignment.closes_at)

        assert assignment.status == "missed"
        assert assignment.status_changed_at == assignment.closes_at
        assert seen == [(assignment.id, marcel.id, "missed", assignment.closes_at)]
        at(clock, assignment.closes_at + timedelta(hours=1))
        assert len(seen) == 1  # once


def test_a_failing_missed_hook_leaves_the_questionnaire_for_the_next_pass(
    app, nurse_ada, clock, memory_channels
):
    calls = []

    def broken(_app, *, assignment, patient, now):
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("alert engine unavailable")

    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    with signals.connected(signals.questionnaire_missed, broken, app):
        at(clock, assignment.closes_at)
        db.session.expire_all()
        assert db.session.get(Assignment, assignment.id).status != "missed"  # rolled back together

        at(clock, assignment.closes_at + timedelta(minutes=1))
        assert db.session.get(Assignment, assignment.id).status == "missed"
        assert len(calls) == 2


def test_a_hook_failing_for_one_questionnaire_does_not_hold_back_the_others(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    josette = make_patient(nurse_ada, given_name="Josette", contact_channels=["sms"])
    marcels = day_one(make_procedure(nurse_ada, marcel))
    josettes = day_one(make_procedure(nurse_ada, josette))

    def fails_for_marcel(_app, *, assignment, patient, now):
        if patient.id == marcel.id:
            raise RuntimeError("alert engine bug")

    with signals.connected(signals.questionnaire_missed, fails_for_marcel, app):
        at(clock, marcels.closes_at)

    db.session.expire_all()
    assert db.session.get(Assignment, josettes.id).status == "missed"
    assert db.session.get(Assignment, marcels.id).status == "pending"  # retried at every pass


def test_a_scheduler_down_for_a_whole_window_marks_the_questionnaire_missed(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))

    at(clock, assignment.closes_at + timedelta(hours=5))

    assert assignment.status == "missed"
    assert memory_channels.all_sent() == []  # a reminder for a closed questionnaire is useless


def test_after_an_outage_only_the_latest_due_reminder_is_sent_and_the_others_expire(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))

    at(clock, T0 + timedelta(hours=25))  # down from before T0 until the next day, 11:00

    assert sent_times("sms") == [T0 + timedelta(hours=25)]
    assert [(r.rung, r.status, r.reason) for r in reminders_of(assignment)] == [
        (0, "expired", "superseded"),
        (1, "enqueued", None),
        (2, "pending", None),
    ]


def test_the_last_rung_is_written_when_the_one_before_is_settled_at_its_planned_time(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))

    at(clock, T0)
    # The second rung carries the third's planned time; the third has no row yet.
    assert [(r.rung, r.status, r.due_at, r.next_due_at) for r in reminders_of(assignment)] == [
        (0, "enqueued", T0, None),
        (1, "pending", T0 + timedelta(hours=24), T0 + timedelta(hours=48)),
    ]
    at(clock, T0 + timedelta(hours=24))
    assert [(r.rung, r.status, r.due_at) for r in reminders_of(assignment)] == [
        (0, "enqueued", T0),
        (1, "enqueued", T0 + timedelta(hours=24)),
        (2, "pending", T0 + timedelta(hours=48)),
    ]
    at(clock, T0 + timedelta(hours=48))
    assert sent_times("sms") == [T0, T0 + timedelta(hours=24), T0 + timedelta(hours=48)]


def test_a_late_second_rung_gives_way_to_the_last_one_it_carries(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    at(clock, T0)

    # Down from just before the second rung until 05:00 Paris, 5 h before the third.
    at(clock, T0 + timedelta(hours=43))
    assert [(r.rung, r.status, r.reason) for r in reminders_of(assignment)] == [
        (0, "enqueued", None),
        (1, "expired", "superseded"),
        (2, "pending", None),
    ]
    at(clock, T0 + timedelta(hours=48))
    at(clock, T0 + timedelta(hours=60))
    assert sent_times("sms") == [T0, T0 + timedelta(hours=48)]


def test_a_second_rung_skipped_during_a_pause_still_leads_to_the_last_after_resumption(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))
    at(clock, T0)
    marcel.status = "paused"
    db.session.commit()
    at(clock, T0 + timedelta(hours=24))
    marcel.status = "active"
    db.session.commit()
    at(clock, T0 + timedelta(hours=48))

    assert sent_times("sms") == [T0, T0 + timedelta(hours=48)]
    assert [(r.rung, r.status, r.reason) for r in reminders_of(assignment)] == [
        (0, "enqueued", None),
        (1, "skipped", "patient_paused"),
        (2, "enqueued", None),
    ]


def test_a_late_reminder_in_quiet_hours_gives_way_to_the_next_rung_in_the_morning(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    assignment = day_one(make_procedure(nurse_ada, marcel))

    at(clock, utc(2026, 11, 23, 22, 30))  # back at 23:30 Paris: quiet, the reminder waits
    assert memory_channels.sms.sent == []
    at(clock, utc(2026, 11, 24, 7, 0))  # 08:00: the 10:00 reminder is two hours away
    assert memory_channels.sms.sent == []
    at(clock, utc(2026, 11, 24, 9, 0))

    assert sent_times("sms") == [utc(2026, 11, 24, 9, 0)]
    assert [r.status for r in reminders_of(assignment)] == ["expired", "enqueued", "pending"]


def test_jobs_registered_by_other_domains_run_in_every_pass_and_in_run_once(
    app, clock, memory_channels
):
    calls = []

    def escalate(now):
        calls.append(now)
        return 0

    def contribute(_app):
        return (escalate, escalate)  # once in the pass all the same

    with signals.connected(signals.scheduler_jobs, contribute, app):
        run_pass()
        result = app.test_cli_runner().invoke(args=["scheduler", "run-once"])

    assert result.exit_code == 0, result.output
    assert "escalate=0" in result.output and "send_due_deliveries=0" in result.output
    assert calls == [T0, T0]


def test_run_once_does_everything_due_at_the_current_time(app, nurse_ada, clock, memory_channels):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)

    result = app.test_cli_runner().invoke(args=["scheduler", "run-once"])

    assert result.exit_code == 0, result.output
    # The questionnaire opened with its first reminder enqueued in the same step, and sent.
    assert "open_questionnaires=1" in result.output
    assert "send_due_deliveries=1" in result.output
    assert len(memory_channels.sms.sent) == 1


def test_a_reminder_that_cannot_be_handled_is_postponed_without_holding_back_the_others(
    app, nurse_ada, clock, memory_channels, monkeypatch
):
    from backend.batches import POISON_DELAY
    from backend.schedule import services

    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    josette = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["sms"], phone="+33611111111"
    )
    broken = day_one(make_procedure(nurse_ada, marcel))
    fine = day_one(make_procedure(nurse_ada, josette))
    broken_id, opens_at = broken.id, broken.opens_at
    assert fine.opens_at == opens_at
    real_link = services.questionnaire_link

    def link(assignment_id):
        if assignment_id == broken_id:
            raise RuntimeError("a bug in this one row")
        return real_link(assignment_id)

    monkeypatch.setattr(services, "questionnaire_link", link)
    at(clock, opens_at)

    first, *later = reminders_of(broken)
    assert (first.status, first.reason, first.due_at) == (
        "pending",
        "internal_error",
        opens_at + POISON_DELAY,
    )
    # The second rung waits, carrying the third's time.
    assert [(r.status, r.next_due_at is not None) for r in later] == [("pending", True)]
    assert reminders_of(fine)[0].status == "enqueued"
    assert [m.to for m in memory_channels.sms.sent] == ["+33611111111"]
