"""The outbox's decisions, with the providers replaced by in-memory transports.

Marcel, 86, sacroiliac screws (Lyon, French); his day-1 check-in opens at T0 (10:00 in Paris).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from backend import signals
from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.notify import enqueue
from backend.notify.channels import build_channels, install_channels
from backend.notify.claim import claim_due_deliveries
from backend.notify.models import Delivery, DeliveryAttempt, Notification
from backend.notify.settings import OutboxSettings
from backend.notify.texts import Text, staff_texts
from backend.patients.models import Device
from backend.schedule.worker import run_pass
from notifications import MemoryTransport, TransportError
from tests.conftest import T0, make_staff
from tests.factories import make_patient, make_procedure
from tests.notify.conftest import attempts_of, notifications_of

UNREGISTERED = TransportError("fcm: UNREGISTERED (HTTP 404)", permanent=True, code="unregistered")
UNAVAILABLE = TransportError(
    "twilio: provider unavailable (HTTP 503)", permanent=False, code="unavailable"
)


def enroll_phone(patient, token="android-token-marcel", platform="android", when=T0):
    device = Device(
        patient_id=patient.id, platform=platform, push_token=token, created_at=when, updated_at=when
    )
    db.session.add(device)
    db.session.commit()
    return device


def enqueue_what_is_due(clock) -> None:
    """Every scheduler job but the delivery job (questionnaires opened, reminders enqueued), then
    commit: the outbox holds what is due, nothing is sent yet."""
    from backend.schedule import jobs

    for job in jobs.jobs():
        job(clock.now())
    db.session.commit()


def the_notification(patient) -> Notification:
    (notification,) = notifications_of(patient.id)
    return notification


def outcomes(delivery) -> list[tuple[str | None, str | None]]:
    return [(a.outcome, a.error_code) for a in attempts_of(delivery)]


def test_an_unregistered_push_token_is_disabled_and_the_sms_goes_out_instead(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    phone = enroll_phone(marcel)
    make_procedure(nurse_ada, marcel)
    memory_channels.android.fail_for("android-token-marcel", UNREGISTERED)

    run_pass()

    assert [m.to for m in memory_channels.sms.sent] == ["+33612345678"]
    notification = the_notification(marcel)
    push, sms = notification.deliveries
    assert (push.channel, push.status, push.status_reason) == ("push", "failed", "unregistered")
    assert outcomes(push) == [("failed", "unregistered")]
    assert (sms.status, outcomes(sms)) == ("sent", [("sent", None)])
    assert notification.status == "sent"
    assert (phone.push_disabled_at, phone.push_disabled_reason) == (T0, "unregistered")
    audit = db.session.execute(
        db.select(AuditEvent).filter_by(action="contact.disable")
    ).scalar_one()
    assert audit.patient_id == marcel.id and audit.details == {
        "channel": "push",
        "reason": "unregistered",
    }


def test_a_dead_token_on_one_phone_moves_the_push_to_the_patients_other_phone(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    enroll_phone(marcel, "old-iphone", "ios", when=T0 - timedelta(days=30))
    enroll_phone(marcel, "new-android", "android", when=T0 - timedelta(days=1))
    make_procedure(nurse_ada, marcel)
    memory_channels.android.fail_for("new-android", UNREGISTERED)

    run_pass()

    assert [m.to for m in memory_channels.ios.sent] == ["old-iphone"]
    assert memory_channels.sms.sent == []
    push = the_notification(marcel).deliveries[0]
    assert outcomes(push) == [("failed", "unregistered"), ("sent", None)]


def test_a_patient_without_an_enrolled_phone_gets_the_next_channel_and_the_reason_is_kept(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    make_procedure(nurse_ada, marcel)

    run_pass()

    push, sms = the_notification(marcel).deliveries
    assert outcomes(push) == [("no_route", "no_push_device")]
    assert sms.status == "sent"


def test_an_invalid_number_is_disabled_and_with_no_channel_left_the_notification_fails(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_for(
        "+33612345678",
        TransportError("twilio: error 21211 (HTTP 400)", permanent=True, code="invalid_recipient"),
    )

    run_pass()

    notification = the_notification(marcel)
    assert (notification.status, notification.status_reason) == ("failed", "no_channel_left")
    assert marcel.phone_disabled_reason == "invalid_recipient"
    # The next reminder does not even try the dead number...
    clock.advance(timedelta(hours=24))
    run_pass()
    assert len(memory_channels.sms.attempts) == 1
    latest = notifications_of(marcel.id)[-1]
    assert outcomes(latest.deliveries[0]) == [("no_route", "phone_disabled")]
    # ...until the nurse corrects it.
    marcel.phone = "+33698765432"
    db.session.commit()
    assert marcel.phone_disabled_at is None
    clock.advance(timedelta(hours=24))
    run_pass()
    assert [m.to for m in memory_channels.sms.sent] == ["+33698765432"]


def test_transient_failures_are_retried_with_growing_jittered_delays(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(UNAVAILABLE, times=3)

    run_pass()
    delays = []
    for _ in range(3):
        sms = the_notification(marcel).deliveries[0]
        assert sms.status == "pending"
        delays.append((sms.next_attempt_at - clock.now()).total_seconds())
        clock.set(sms.next_attempt_at)
        run_pass()

    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60 and 60 <= delays[2] <= 120
    sms = the_notification(marcel).deliveries[0]
    assert sms.status == "sent" and sms.attempts == 4
    assert [o for o, _ in outcomes(sms)] == ["retry", "retry", "retry", "sent"]
    assert len(memory_channels.sms.sent) == 1


def test_a_retry_never_comes_before_the_providers_retry_after(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(
        TransportError(
            "twilio: rate limited (HTTP 429)", permanent=False, retry_after=600, code="rate_limited"
        )
    )

    run_pass()
    clock.advance(timedelta(seconds=599))
    run_pass()
    assert memory_channels.sms.sent == []
    clock.advance(timedelta(seconds=1))
    run_pass()

    sms = the_notification(marcel).deliveries[0]
    assert [(a.outcome, a.retry_at) for a in attempts_of(sms)] == [
        ("retry", T0 + timedelta(seconds=600)),
        ("sent", None),
    ]


def test_a_reminder_still_failing_when_its_questionnaire_closes_is_expired_not_sent(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    procedure = make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(
        TransportError(
            "twilio: rate limited", permanent=False, retry_after=4 * 24 * 3600, code="rate_limited"
        )
    )

    run_pass()

    notification = the_notification(marcel)
    assert (notification.status, notification.status_reason) == ("expired", "useful_until_passed")
    assert notification.expires_at == next(a for a in procedure.schedule if a.day == 1).closes_at
    assert notification.deliveries[0].status == "expired"


def test_a_retry_that_comes_due_after_the_window_closed_is_expired_not_sent(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(
        TransportError(
            "twilio: rate limited", permanent=False, retry_after=2 * 24 * 3600, code="rate_limited"
        )
    )
    run_pass()
    assert the_notification(marcel).status == "pending"

    clock.advance(timedelta(days=4))  # the scheduler was down past the window's end
    run_pass()

    assert memory_channels.sms.sent == []
    first = notifications_of(marcel.id)[0]
    assert (first.status, first.deliveries[0].status) == ("expired", "expired")


def test_after_the_last_attempt_on_a_channel_the_next_one_is_tried(
    app, nurse_ada, clock, memory_channels
):
    app.config["NOTIFICATION_MAX_ATTEMPTS"] = 2
    marcel = make_patient(
        nurse_ada, contact_channels=["sms", "email"], email="marcel.dupont@example.org"
    )
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(UNAVAILABLE, times=2)

    run_pass()
    clock.set(the_notification(marcel).deliveries[0].next_attempt_at)
    run_pass()

    sms, email = the_notification(marcel).deliveries
    assert (sms.status, sms.status_reason) == ("failed", "gave_up")
    assert marcel.phone_disabled_at is None  # an outage says nothing about the number
    assert email.status == "sent"
    assert [m.to for m in memory_channels.email.sent] == ["marcel.dupont@example.org"]


def test_production_refuses_a_channel_it_has_no_provider_for_and_fails_over(app, nurse_ada, clock):
    production = build_channels({**app.config, "APP_ENV": "production"})
    assert production.describe() == {route: "not configured" for route in production.describe()}
    sms = MemoryTransport("sms")
    install_channels(app, {"sms": sms})  # push is not configured on this server
    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    enroll_phone(marcel)
    make_procedure(nurse_ada, marcel)

    run_pass()

    push, _ = the_notification(marcel).deliveries
    assert outcomes(push) == [("no_route", "channel_not_configured")]
    assert len(sms.sent) == 1


def test_development_prints_unconfigured_channels_to_the_console(app):
    channels = build_channels({**app.config, "APP_ENV": "development"})
    assert set(channels.describe().values()) == {"ConsoleTransport"}


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("fr", "Rappel", "Vous avez un questionnaire à remplir."),
        ("en", "Reminder", "You have a questionnaire to answer."),
    ],
)
def test_a_reminder_says_only_that_a_questionnaire_waits_in_the_patients_language(
    app, nurse_ada, clock, memory_channels, locale, title, body
):
    marcel = make_patient(nurse_ada, contact_channels=["push"], locale=locale)
    enroll_phone(marcel)
    procedure = make_procedure(nurse_ada, marcel)
    day_one = next(a for a in procedure.schedule if a.day == 1)

    run_pass()

    (message,) = memory_channels.android.sent
    assert (message.title, message.body) == (title, body)
    assert message.link == f"irfollowup://questionnaires/{day_one.id}"
    assert dict(message.data) == {}
    assert message.collapse_key == f"questionnaire-{day_one.id}"
    delivery = the_notification(marcel).deliveries[0]
    assert message.idempotency_key == str(delivery.id)
    text = f"{message.title} {message.body} {message.link}".lower()
    for secret in ("marcel", "dupont", "screw", "vis", "sacr", "pain", "douleur", "checkin"):
        assert secret not in text


def test_the_deep_link_base_comes_from_the_configuration(app, nurse_ada, clock, memory_channels):
    app.config["APP_DEEP_LINK_BASE"] = "https://app.chu-lyon.example/q"
    marcel = make_patient(nurse_ada, contact_channels=["push"])
    enroll_phone(marcel)
    procedure = make_procedure(nurse_ada, marcel)
    run_pass()
    day_one = next(a for a in procedure.schedule if a.day == 1)
    # A push opens the app; an SMS or an e-mail carries the web link instead
    # (tests/notify/test_answer_link_texts.py).
    assert memory_channels.android.sent[0].link == f"https://app.chu-lyon.example/q/{day_one.id}"


def test_staff_are_emailed_once_per_event_in_their_sites_language(
    app, nurse_ada, physician_leon, nurse_noe, clock, memory_channels
):
    make_staff("retired@lyon.example", "nurse", "LYON")
    from backend.auth.models import User

    retired = db.session.execute(
        db.select(User).filter_by(email="retired@lyon.example")
    ).scalar_one()
    retired.is_active = False
    db.session.commit()
    event = f"alert:{uuid.uuid4()}:overdue"

    first = enqueue.enqueue_staff_notification(
        nurse_ada.site_id,
        ["nurse", "physician"],
        "alert_escalation",
        now=T0,
        subject_key="alert_overdue",
        link="https://followup.chu-lyon.example/alerts/1",
        dedupe_key=event,
    )
    again = enqueue.enqueue_staff_notification(
        nurse_ada.site_id,
        ["nurse", "physician"],
        "alert_escalation",
        now=T0,
        subject_key="alert_overdue",
        link="https://followup.chu-lyon.example/alerts/1",
        dedupe_key=event,
    )
    db.session.commit()
    run_pass()

    assert len(first) == 2 and again == []
    sent = sorted(memory_channels.email.sent, key=lambda m: m.to)
    assert [m.to for m in sent] == ["ada@lyon.example", "leon@lyon.example"]
    assert {(m.title, m.link) for m in sent} == {
        ("Alerte en attente", "https://followup.chu-lyon.example/alerts/1")
    }


def test_staff_texts_must_exist_in_both_languages(app):
    def french_only(_app):
        return {"weekly_digest": {"fr": Text("Synthèse", "Une synthèse attend.")}}

    with (
        signals.connected(signals.staff_texts, french_only, app),
        pytest.raises(ValueError, match="en"),
    ):
        staff_texts()
    with pytest.raises(ValueError, match="unknown staff text"):
        enqueue.enqueue_staff_notification(
            uuid.uuid4(), ["nurse"], "x", now=T0, subject_key="nope", link=None, dedupe_key="k"
        )


def test_a_delivery_whose_worker_died_is_taken_up_after_its_lease_and_sent_once(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    from backend.notify.channels import get_channels

    enqueue_what_is_due(clock)
    # A worker claims the delivery, commits, and is killed before sending.
    claim = claim_due_deliveries(
        clock.now(),
        worker="killed-worker",
        settings=OutboxSettings.from_config(app.config),
        channels=get_channels(),
    )
    db.session.commit()
    assert len(claim.jobs) == 1

    clock.advance(timedelta(seconds=299))
    run_pass()
    assert memory_channels.sms.sent == []  # the lease still holds
    clock.advance(timedelta(seconds=1))
    run_pass()

    assert len(memory_channels.sms.sent) == 1
    sms = the_notification(marcel).deliveries[0]
    attempts = attempts_of(sms)
    assert [(a.worker == "killed-worker", a.outcome) for a in attempts] == [
        (True, "interrupted"),
        (False, "sent"),
    ]
    assert (sms.status, sms.claimed_by, sms.claimed_until) == ("sent", None, None)


def test_a_worker_whose_lease_ran_out_sends_nothing_more_from_its_batch(app, nurse_ada, clock):
    from backend.notify import jobs as notify_jobs

    class Slow(MemoryTransport):
        def send(self, message):
            clock.advance(timedelta(seconds=301))  # this one send outlived the 300 s lease
            return super().send(message)

    slow, other = Slow("sms"), MemoryTransport("sms")
    install_channels(app, {"sms": slow})
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    josette = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["sms"], phone="+33611111111"
    )
    make_procedure(nurse_ada, marcel)
    make_procedure(nurse_ada, josette)
    enqueue_what_is_due(clock)

    notify_jobs.send_due_deliveries(clock.now())  # claims both, sends one, gives up the other
    assert len(slow.sent) == 1
    install_channels(app, {"sms": other})
    run_pass()  # another worker takes the abandoned one up

    assert len(other.sent) == 1 and {slow.sent[0].to, other.sent[0].to} == {
        "+33612345678",
        "+33611111111",
    }
    abandoned = db.session.execute(
        db.select(DeliveryAttempt).filter_by(outcome="abandoned")
    ).scalar_one()
    assert abandoned.number == 1


def test_the_provider_is_called_with_no_database_transaction_open(app, nurse_ada, clock):
    seen = []

    class Watching(MemoryTransport):
        def send(self, message):
            seen.append(db.session().in_transaction())
            return super().send(message)

    install_channels(app, {"sms": Watching("sms")})
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    run_pass()
    assert seen == [False]


def test_a_transport_bug_is_retried_like_an_outage_and_does_not_stop_the_others(
    app, nurse_ada, clock, memory_channels
):
    class Broken(MemoryTransport):
        def send(self, message):
            raise KeyError("surprise")

    install_channels(app, {"sms": Broken("sms"), "email": memory_channels.email})
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    josette = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["email"], email="josette@example.org"
    )
    make_procedure(nurse_ada, marcel)
    make_procedure(nurse_ada, josette)

    run_pass()

    assert [m.to for m in memory_channels.email.sent] == ["josette@example.org"]
    sms = the_notification(marcel).deliveries[0]
    assert (sms.status, outcomes(sms)) == ("pending", [("retry", "internal")])


def test_every_attempt_is_kept_with_its_time_channel_outcome_provider_id_and_error(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    memory_channels.sms.fail_next(UNAVAILABLE)
    run_pass()
    clock.advance(timedelta(minutes=5))
    run_pass()

    rows = (
        db.session.execute(
            db.select(DeliveryAttempt).join(Delivery).order_by(DeliveryAttempt.number)
        )
        .scalars()
        .all()
    )
    assert [(a.started_at, a.channel, a.outcome, a.provider_id, a.error) for a in rows] == [
        (T0, "sms", "retry", None, "twilio: provider unavailable (HTTP 503)"),
        (T0 + timedelta(minutes=5), "sms", "sent", "sms-1", None),
    ]


def test_during_an_outage_a_batch_stops_calling_the_failing_provider_after_three_failures(
    app, nurse_ada, clock, memory_channels
):
    patients = [
        make_patient(
            nurse_ada, given_name=f"Patient {n}", contact_channels=["sms"], phone=f"+3361111111{n}"
        )
        for n in range(5)
    ]
    ada_email = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["email"], email="josette@example.org"
    )
    for patient in [*patients, ada_email]:
        make_procedure(nurse_ada, patient)
    memory_channels.sms.fail_next(UNAVAILABLE, times=10)  # the SMS provider times out

    run_pass()

    assert len(memory_channels.sms.attempts) == 3  # then the batch left it alone
    assert len(memory_channels.email.sent) == 1  # the other channel was not held up
    codes = sorted(
        a.error_code for p in patients for a in attempts_of(the_notification(p).deliveries[0])
    )
    assert codes == ["circuit_open", "circuit_open", "unavailable", "unavailable", "unavailable"]
    assert all(the_notification(p).deliveries[0].status == "pending" for p in patients)


def test_a_delivery_that_cannot_be_prepared_is_postponed_without_blocking_the_others(
    app, nurse_ada, clock, memory_channels
):
    # A newer process enqueued a text this one does not know (a rolling deploy).
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    josette = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["sms"], phone="+33611111111"
    )
    enqueue.enqueue_patient_notification(
        marcel,
        "questionnaire_reminder",
        now=T0,
        text_key="questionnaire_reminder",
        dedupe_key="future-text",
    ).text_key = "text_from_the_next_release"
    enqueue.enqueue_patient_notification(
        josette,
        "questionnaire_reminder",
        now=T0,
        text_key="questionnaire_reminder",
        dedupe_key="ordinary",
    )
    db.session.commit()

    run_pass()

    assert [m.to for m in memory_channels.sms.sent] == ["+33611111111"]
    stuck = the_notification(marcel).deliveries[0]
    assert (stuck.status, stuck.status_reason) == ("pending", "internal_error")
    assert stuck.next_attempt_at == T0 + timedelta(minutes=30)


def test_a_message_sent_on_its_first_channel_cancels_the_channels_waiting_behind_it(
    app, nurse_ada, clock, memory_channels
):
    marcel = make_patient(nurse_ada, contact_channels=["sms", "email"], email="marcel@example.org")
    make_procedure(nurse_ada, marcel)

    run_pass()

    assert len(memory_channels.sms.sent) == 1 and memory_channels.email.sent == []
    notification = the_notification(marcel)
    assert notification.status == "sent"
    sms, email = notification.deliveries
    assert (sms.channel, sms.status, sms.claimed_by) == ("sms", "sent", None)
    assert (email.channel, email.status, email.status_reason) == (
        "email",
        "cancelled",
        "delivered_on_other_channel",
    )
    assert outcomes(sms) == [("sent", None)]


def test_a_send_recorded_after_another_worker_took_the_lease_leaves_the_delivery_to_it(
    app, nurse_ada, clock, memory_channels
):
    from backend.notify.channels import get_channels
    from backend.notify.jobs import Sender
    from backend.notify.record import record_outcomes

    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    enqueue_what_is_due(clock)
    settings = OutboxSettings.from_config(app.config)
    claim = claim_due_deliveries(
        clock.now(), worker="slow-worker", settings=settings, channels=get_channels()
    )
    db.session.commit()
    with Sender(get_channels(), settings) as sender:
        sent = sender.send(claim.jobs)
    # Meanwhile its lease ran out and another worker took the delivery over.
    db.session.execute(
        db.update(Delivery)
        .where(Delivery.id == claim.jobs[0].delivery_id)
        .values(claimed_by="next-worker")
    )
    db.session.commit()

    record_outcomes(sent, now=clock.now(), settings=settings)
    db.session.commit()

    db.session.expire_all()
    notification = the_notification(marcel)
    (sms,) = notification.deliveries
    assert (sms.status, sms.claimed_by) == ("sending", "next-worker")
    assert notification.status == "pending"
    assert outcomes(sms) == [("sent", None)]  # the attempt itself is recorded


def test_the_database_refuses_a_lease_on_a_delivery_that_is_not_being_sent(
    app, nurse_ada, clock, memory_channels
):
    """Recording a send checks the lease by ``claimed_by`` alone (notify/record.py): that holds
    only because a lease exists exactly while a delivery is ``sending``, which the database
    itself keeps (``ck_deliveries_lease_while_sending``)."""
    import sqlalchemy as sa

    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)
    enqueue_what_is_due(clock)
    (delivery,) = the_notification(marcel).deliveries
    assert delivery.status == "pending"
    lease = {"claimed_by": "w", "claimed_until": clock.now() + timedelta(minutes=5)}
    broken = [
        {"status": "pending", **lease},  # a lease on a delivery waiting for its time
        {"status": "sent", **lease},  # a lease kept after the send
        {"status": "sending", "claimed_by": None, "claimed_until": None},  # sent by nobody
        {"status": "sending", "claimed_by": "w", "claimed_until": None},  # a lease without end
    ]
    for values in broken:
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(db.update(Delivery).where(Delivery.id == delivery.id).values(values))
        db.session.rollback()
    db.session.execute(
        db.update(Delivery).where(Delivery.id == delivery.id).values(status="sending", **lease)
    )
    db.session.commit()


def test_one_claim_sends_the_ordinary_deliveries_and_settles_each_other_one_its_own_way(
    app, nurse_ada, clock, memory_channels
):
    """The claim decides most deliveries from their columns and loads the others as objects:
    in one batch, each still goes its own way (sent; moved out of quiet hours; cancelled
    because answered; the e-mail address disabled, so the SMS behind it is woken)."""
    from backend.notify.jobs import send_due_deliveries
    from backend.patients.models import Patient
    from backend.questionnaires.models import Assignment

    sent = make_patient(nurse_ada, contact_channels=["sms"], phone="+33600000001")
    night = make_patient(nurse_ada, contact_channels=["sms"], phone="+33600000002")
    answered = make_patient(nurse_ada, contact_channels=["sms"], phone="+33600000003")
    no_email = make_patient(
        nurse_ada,
        contact_channels=["email", "sms"],
        email="bounced@example.org",
        phone="+33600000004",
    )
    for patient in (sent, night, answered, no_email):
        make_procedure(nurse_ada, patient)
    clock.set(T0 + timedelta(hours=1, minutes=5))  # the day-1 questionnaires are open (Paris)
    enqueue_what_is_due(clock)
    # Before the send: one patient moved to a zone where it is night, one answered, one
    # e-mail address found dead.
    db.session.execute(
        db.update(Patient).where(Patient.id == night.id).values(timezone="Pacific/Auckland")
    )
    db.session.execute(
        db.update(Patient)
        .where(Patient.id == no_email.id)
        .values(email_disabled_at=clock.now(), email_disabled_reason="invalid_recipient")
    )
    db.session.execute(
        db.update(Assignment)
        .where(Assignment.patient_id == answered.id, Assignment.day == 1)
        .values(status="completed")
    )
    db.session.commit()

    assert send_due_deliveries(clock.now()) == 4
    db.session.commit()

    assert [m.to for m in memory_channels.sms.sent] == ["+33600000001"]
    assert the_notification(sent).status == "sent"
    (waiting,) = the_notification(night).deliveries
    assert waiting.status == "pending" and waiting.next_attempt_at > clock.now()
    assert waiting.claimed_by is None
    cancelled = the_notification(answered)
    assert (cancelled.status, cancelled.status_reason) == ("cancelled", "answered")
    email, sms = the_notification(no_email).deliveries
    assert (email.status, email.status_reason) == ("failed", "email_disabled")
    assert outcomes(email) == [("no_route", "email_disabled")]
    assert (sms.status, sms.next_attempt_at) == ("pending", clock.now())
