"""Staff are told about alerts through the outbox: urgent and high at once, routine in a daily
digest, overdue ones to the physicians once; never what the alert is about. And two missed
questionnaires raise `no_response` when the scheduler closes the windows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from backend.alerts import jobs
from backend.alerts.jobs import STAFF_TEXTS
from backend.alerts.models import Alert
from backend.extensions import db
from backend.notify.models import Notification
from backend.schedule import services as schedule
from tests.alerts.test_alert_engine import DISCHARGE, alerts_of, at_day
from tests.conftest import make_staff
from tests.factories import checkin_answers, make_patient, make_procedure, record


@pytest.fixture
def lyon(app, nurse_ada, physician_leon):
    """Site Lyon: nurse Ada, nurse Zoé, Dr Léon; patient Marcel (sacroiliac screws)."""
    make_staff("zoe@lyon.example", "nurse", "LYON")
    marcel = make_patient(nurse_ada)
    make_procedure(nurse_ada, marcel, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    return marcel


def staff_notifications(text_key: str) -> list[Notification]:
    return list(db.session.execute(db.select(Notification).filter_by(text_key=text_key)).scalars())


def test_an_urgent_alert_emails_every_nurse_of_the_site_at_once_without_health_content(
    lyon, nurse_ada
):
    record(lyon, at_day(3), answers=checkin_answers(symptoms=["chest_pain"]))
    sent = staff_notifications("alert_opened")
    assert len(sent) == 2  # Ada and Zoé, not the physician
    [alert] = alerts_of(lyon)
    assert all(n.link.endswith(f"/alerts/{alert.id}") for n in sent)
    for text in STAFF_TEXTS["alert_opened"].values():
        for word in ("chest", "poitrine", "Marcel", "Dupont", "pain", "douleur"):
            assert word not in text.title + text.body


def test_routine_alerts_wait_for_the_daily_digest(lyon, clock):
    record(lyon, at_day(3, 22), answers=checkin_answers(change="much_worse"))
    assert staff_notifications("alert_opened") == []
    assert jobs.send_routine_digests(at_day(4, 7)) == 0  # before 08:00 in Lyon
    assert jobs.send_routine_digests(at_day(4, 8)) == 1
    assert len(staff_notifications("alerts_digest")) == 2
    assert jobs.send_routine_digests(at_day(4, 9)) == 0  # once


def test_an_overdue_alert_tells_the_physicians_once(lyon):
    record(lyon, at_day(3), answers=checkin_answers(call_request=True))  # high: 24 h
    assert jobs.escalate(at_day(3) + timedelta(hours=23)) == 0
    assert jobs.escalate(at_day(4, 11)) == 1
    assert jobs.escalate(at_day(5)) == 0
    [sent] = staff_notifications("alert_overdue")
    assert sent.user_id is not None
    [alert] = alerts_of(lyon)
    assert alert.escalated_at is not None


def test_two_missed_questionnaires_raise_no_response_when_the_windows_close(lyon):
    # Marcel answers nothing: day 1 and day 7 close unanswered.
    schedule.close_expired_assignments(at_day(12), limit=100)
    kinds = {a.kind for a in alerts_of(lyon)}
    assert kinds == {"no_response"}
    [alert] = db.session.execute(db.select(Alert).filter_by(kind="no_response")).scalars()
    assert alert.severity == "routine"


def test_a_new_red_flag_on_an_acknowledged_alert_emails_the_nurses_once_per_answer(lyon, nurse_ada):
    from backend.alerts import services as alerts
    from tests.factories import principal_of

    record(lyon, at_day(3), answers=checkin_answers(symptoms=["numbness"]))
    [alert] = alerts_of(lyon)
    # Still open: a second report joins it and waits in the queue with it, no e-mail again.
    record(lyon, at_day(3, 11), answers=checkin_answers(symptoms=["numbness"]))
    assert staff_notifications("alert_news") == []
    alerts.acknowledge(principal_of(nurse_ada), alert, at_day(3, 12))
    db.session.commit()
    # Acknowledged: the nurse acted on what it said then; a new red flag must reach her.
    worse = record(lyon, at_day(3, 15), answers=checkin_answers(symptoms=["bladder_bowel"]))
    news = staff_notifications("alert_news")
    assert len(news) == 2  # Ada and Zoé, not the physician
    assert all(n.link.endswith(f"/alerts/{alert.id}") for n in news)
    assert all(n.dedupe_key.startswith(f"alert:{alert.id}:news:{worse.id}:") for n in news)
    # The same evaluation again (a retried job, a re-evaluation) tells nobody twice.
    alerts.evaluate_patient(lyon, lyon.procedures[0], at_day(3, 16))
    db.session.commit()
    assert len(staff_notifications("alert_news")) == 2
    # Another answer with news: told again; one without: not.
    record(lyon, at_day(4), answers=checkin_answers(symptoms=["leg_weakness"]))
    record(lyon, at_day(4, 11), answers=checkin_answers())
    assert len(staff_notifications("alert_news")) == 4
    [still] = alerts_of(lyon)
    assert still.status == "acknowledged" and still.id == alert.id
    for text in STAFF_TEXTS["alert_news"].values():
        for word in ("bladder", "vessie", "numb", "Marcel", "Dupont", "red flag", "urgence"):
            assert word not in text.title + text.body


def test_new_evidence_on_an_acknowledged_routine_alert_waits_for_the_nurses_like_the_alert(
    lyon, nurse_ada
):
    from backend.alerts import services as alerts
    from tests.factories import principal_of

    record(lyon, at_day(3), answers=checkin_answers(change="much_worse"))
    [alert] = alerts_of(lyon)
    alerts.acknowledge(principal_of(nurse_ada), alert, at_day(3, 12))
    db.session.commit()
    record(lyon, at_day(4), answers=checkin_answers(change="much_worse", fell=True))
    assert staff_notifications("alert_news") == []
