"""Reminders through the real transports, built from the settings, to local provider stand-ins.

E-mail goes to a real SMTP server in this process (aiosmtpd); FCM, APNs and Twilio to the HTTP
stand-ins of tests/notifications, which answer as each provider documents. Only the network
edge is a stand-in: configuration, outbox, retries and fallbacks all run for real.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from backend.extensions import db
from backend.notify.channels import get_channels
from backend.notify.models import DeliveryAttempt
from backend.patients.models import Device
from backend.questionnaires import links
from backend.schedule.worker import run_pass
from tests.conftest import T0
from tests.factories import make_patient, make_procedure
from tests.notifications.conftest import (
    APNS_KEY_ID,
    APNS_TEAM,
    APNS_TOPIC,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    RecordingSmtpHandler,
    Reply,
    fcm_error_detail,
    free_port,
    google_error,
)
from tests.notify.conftest import attempts_of, notifications_of

MAIL_FROM = "Suivi RI <no-reply@chu-lyon.example>"


class FlakySmtpHandler(RecordingSmtpHandler):
    """The stand-in's SMTP handler, which can also refuse the next RCPTs with a 4xx."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.refusals:
            return self.refusals.pop(0)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, FlakySmtpHandler]]:
    handler = FlakySmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5.0)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def app_config(
    tmp_path,
    smtp,
    fcm_stand_in,
    apns_stand_in,
    twilio_stand_in,
    service_account_info,
    apns_key_pem,
) -> dict[str, Any]:
    """Every channel configured as in production, pointing at the stand-ins."""
    key_file = tmp_path / "fcm-service-account.json"
    key_file.write_text(json.dumps(service_account_info))
    p8 = tmp_path / "AuthKey.p8"
    p8.write_text(apns_key_pem)
    controller, _ = smtp
    return {
        "SMTP_HOST": controller.hostname,
        "SMTP_PORT": str(controller.port),
        "SMTP_STARTTLS": "false",
        "MAIL_FROM": MAIL_FROM,
        "FCM_SERVICE_ACCOUNT_FILE": str(key_file),
        "FCM_ENDPOINT": fcm_stand_in.http.url,
        "FCM_TOKEN_URI": fcm_stand_in.token_uri,
        "APNS_TEAM_ID": APNS_TEAM,
        "APNS_KEY_ID": APNS_KEY_ID,
        "APNS_PRIVATE_KEY_FILE": str(p8),
        "APNS_TOPIC": APNS_TOPIC,
        "APNS_ENDPOINT": apns_stand_in.url,
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": TWILIO_FROM,
        "TWILIO_ENDPOINT": twilio_stand_in.http.url,
        "NOTIFICATION_TIMEOUT_SECONDS": "5",
    }


@pytest.fixture(autouse=True)
def _close_channels(any_app) -> Iterator[None]:
    yield
    get_channels(any_app).close()


def enroll_phone(patient, token: str, platform: str = "android") -> Device:
    device = Device(
        patient_id=patient.id, platform=platform, push_token=token, created_at=T0, updated_at=T0
    )
    db.session.add(device)
    db.session.commit()
    return device


def only_notification(patient):
    (notification,) = notifications_of(patient.id)
    return notification


def test_the_configured_channels_are_the_real_transports(app):
    assert get_channels(app).describe() == {
        "push:android": "FcmTransport",
        "push:ios": "ApnsTransport",
        "sms": "TwilioSmsTransport",
        "email": "SmtpTransport",
    }


# --- e-mail: a real SMTP server ----------------------------------------------------------------


def test_an_email_reminder_is_delivered_with_the_delivery_id_as_message_id(
    app, nurse_ada, clock, smtp
):
    _, handler = smtp
    marcel = make_patient(nurse_ada, contact_channels=["email"], email="marcel@example.org")
    procedure = make_procedure(nurse_ada, marcel)

    run_pass()

    (envelope,) = handler.messages
    assert envelope["rcpt_tos"] == ["marcel@example.org"]
    mail = message_from_bytes(envelope["content"], policy=policy.default)
    delivery = only_notification(marcel).deliveries[0]
    assert mail["Subject"] == "Rappel"
    assert mail["Message-ID"] == f"<{delivery.id}@chu-lyon.example>"
    day_one = next(a for a in procedure.schedule if a.day == 1)
    text, blank, link = mail.get_content().splitlines()
    assert (text, blank) == ("Vous avez un questionnaire à remplir.", "")
    # By e-mail, the web link of the answer pages (a single-use token), not the app's.
    assert link.startswith(f"{app.config['ANSWER_LINK_BASE_URL']}/")
    assert links.open_link(link.rsplit("/", 1)[1], now=T0).assignment.id == day_one.id
    assert delivery.status == "sent"
    assert attempts_of(delivery)[0].provider_id == mail["Message-ID"]


def test_an_smtp_4xx_is_retried_and_the_mail_then_delivered(app, nurse_ada, clock, smtp):
    _, handler = smtp
    handler.refusals.append("451 4.3.0 Temporary local problem - please try later")
    marcel = make_patient(nurse_ada, contact_channels=["email"], email="marcel@example.org")
    make_procedure(nurse_ada, marcel)

    run_pass()
    delivery = only_notification(marcel).deliveries[0]
    assert (delivery.status, handler.messages) == ("pending", [])
    clock.set(delivery.next_attempt_at)
    run_pass()

    assert len(handler.messages) == 1
    assert [(a.outcome, a.error_code) for a in attempts_of(delivery)] == [
        ("retry", "unavailable"),
        ("sent", None),
    ]


def test_an_smtp_5xx_disables_the_address_and_the_reminder_goes_by_sms(
    app, nurse_ada, clock, smtp, twilio_stand_in
):
    _, handler = smtp
    marcel = make_patient(nurse_ada, contact_channels=["email", "sms"], email="nobody@example.org")
    make_procedure(nurse_ada, marcel)

    run_pass()

    assert handler.messages == []
    assert (marcel.email_disabled_reason, marcel.email_disabled_at) == ("invalid_recipient", T0)
    email, sms = only_notification(marcel).deliveries
    assert [(a.outcome, a.error) for a in attempts_of(email)] == [
        ("failed", "smtp: recipient refused (550)")
    ]
    assert sms.status == "sent"
    (form,) = twilio_stand_in.forms
    assert form["To"] == "+33612345678" and form["From"] == TWILIO_FROM
    assert form["Body"].startswith(
        f"Vous avez un questionnaire à remplir.\n{app.config['ANSWER_LINK_BASE_URL']}/"
    )


# --- push and SMS: HTTP stand-ins ---------------------------------------------------------------


def test_an_android_push_goes_through_fcm_and_collapses_earlier_reminders(
    app, nurse_ada, clock, fcm_stand_in
):
    marcel = make_patient(nurse_ada, contact_channels=["push"], locale="en")
    enroll_phone(marcel, "android-token-ok")
    procedure = make_procedure(nurse_ada, marcel)

    run_pass()

    day_one = next(a for a in procedure.schedule if a.day == 1)
    (body,) = fcm_stand_in.sent
    assert body["message"]["token"] == "android-token-ok"
    assert body["message"]["notification"] == {
        "title": "Reminder",
        "body": "You have a questionnaire to answer.",
    }
    assert body["message"]["data"] == {"link": f"irfollowup://questionnaires/{day_one.id}"}
    assert body["message"]["android"] == {"collapse_key": f"questionnaire-{day_one.id}"}
    delivery = only_notification(marcel).deliveries[0]
    assert delivery.provider_id.startswith("projects/demo-followup/messages/")


def test_fcm_429_is_retried_no_sooner_than_its_retry_after(app, nurse_ada, clock, fcm_stand_in):
    answer = fcm_stand_in.handle_send
    replies = [
        google_error(
            429, "RESOURCE_EXHAUSTED", "Quota exceeded.", fcm_error_detail("QUOTA_EXCEEDED")
        )
    ]
    replies[0].headers["Retry-After"] = "30"

    def first_throttled(request: Any) -> Reply:
        return replies.pop(0) if replies else answer(request)

    fcm_stand_in.handle_send = first_throttled
    marcel = make_patient(nurse_ada, contact_channels=["push"])
    enroll_phone(marcel, "android-token-ok")
    make_procedure(nurse_ada, marcel)

    run_pass()
    delivery = only_notification(marcel).deliveries[0]
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    clock.advance(timedelta(seconds=29))
    run_pass()
    assert fcm_stand_in.sent == []
    clock.advance(timedelta(seconds=1))
    run_pass()

    assert len(fcm_stand_in.sent) == 1 and delivery.status == "sent"
    assert [(a.outcome, a.error_code) for a in attempts_of(delivery)] == [
        ("retry", "rate_limited"),
        ("sent", None),
    ]


def test_an_unregistered_fcm_token_is_disabled_and_the_reminder_goes_by_sms(
    app, nurse_ada, clock, fcm_stand_in, twilio_stand_in
):
    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    phone = enroll_phone(marcel, "unregistered-android-token")
    make_procedure(nurse_ada, marcel)

    run_pass()

    assert (phone.push_disabled_at, phone.push_disabled_reason) == (T0, "unregistered")
    push, sms = only_notification(marcel).deliveries
    assert (push.status, sms.status) == ("failed", "sent")
    assert [f["To"] for f in twilio_stand_in.forms] == ["+33612345678"]
    clock.advance(timedelta(hours=24))  # the next reminder does not try the dead token again
    run_pass()
    assert len(fcm_stand_in.sent) == 1 and len(twilio_stand_in.forms) == 2


def test_an_apns_410_disables_the_iphone_and_the_reminder_goes_by_email(
    app, nurse_ada, clock, apns_stand_in, smtp
):
    _, handler = smtp
    marcel = make_patient(nurse_ada, contact_channels=["push", "email"], email="m@example.org")
    iphone = enroll_phone(marcel, "unregistered0123abcd", platform="ios")
    make_procedure(nurse_ada, marcel)

    run_pass()

    assert iphone.push_disabled_reason == "unregistered"
    (request,) = apns_stand_in.requests
    delivery = only_notification(marcel).deliveries[0]
    assert request["headers"]["apns-id"] == str(delivery.id)
    assert len(handler.messages) == 1


def test_an_apns_503_is_retried_after_its_retry_after(app, nurse_ada, clock, apns_stand_in):
    marcel = make_patient(nurse_ada, contact_channels=["push"])
    enroll_phone(marcel, "down-iphone-token", platform="ios")
    make_procedure(nurse_ada, marcel)

    run_pass()

    delivery = only_notification(marcel).deliveries[0]
    assert delivery.status == "pending"
    assert delivery.next_attempt_at == T0 + timedelta(seconds=120)
    (attempt,) = attempts_of(delivery)
    assert (attempt.outcome, attempt.error_code) == ("retry", "unavailable")


def test_a_twilio_429_is_retried_and_an_opted_out_number_is_disabled(
    app, nurse_ada, clock, twilio_stand_in
):
    busy = make_patient(nurse_ada, contact_channels=["sms"], phone="+15005550429")
    stopped = make_patient(
        nurse_ada, given_name="Josette", contact_channels=["sms"], phone="+15005550004"
    )
    make_procedure(nurse_ada, busy)
    make_procedure(nurse_ada, stopped)

    run_pass()

    throttled = only_notification(busy).deliveries[0]
    assert throttled.status == "pending"
    assert attempts_of(throttled)[0].error_code == "rate_limited"
    assert throttled.next_attempt_at >= T0 + timedelta(seconds=5)
    assert stopped.phone_disabled_reason == "opted_out"
    assert only_notification(stopped).status == "failed"


def _email_reminders_due(nurse, clock, n: int) -> list[Any]:
    """``n`` patients reached by e-mail, each with a reminder enqueued and due: every job but
    the delivery job has run."""
    from backend.schedule import jobs

    patients = [
        make_patient(
            nurse,
            given_name=f"Patient {i}",
            contact_channels=["email"],
            email=f"patient{i}@example.org",
        )
        for i in range(n)
    ]
    for patient in patients:
        make_procedure(nurse, patient)
    for job in jobs.jobs():
        job(clock.now())
    db.session.commit()
    return patients


def _server_closed() -> Exception:
    """What SQLAlchemy raises when PostgreSQL goes away under a commit."""
    import psycopg
    import sqlalchemy as sa

    return sa.exc.OperationalError(
        "COMMIT", None, psycopg.OperationalError("server closed the connection")
    )


def _assert_only_the_unrecorded_chunk_went_twice(
    handler: Any, patients: list[Any], first_pass: Counter[str], every: int
) -> None:
    """After the outage and the leases: everyone reached, the unrecorded chunk (sent in the first
    pass) twice, nobody a third time, every delivery sent; the unrecorded chunk and the chunk
    never sent counted as interrupted attempts."""
    import sqlalchemy as sa

    sent_to = Counter(m["rcpt_tos"][0] for m in handler.messages)
    assert set(sent_to) == {f"patient{n}@example.org" for n in range(len(patients))}
    twice = {address for address, n in sent_to.items() if n == 2}
    assert len(twice) == every and max(sent_to.values()) == 2
    assert twice <= set(first_pass)
    db.session.expire_all()
    assert all(only_notification(p).deliveries[0].status == "sent" for p in patients)
    interrupted = db.session.execute(
        sa.select(sa.func.count()).select_from(DeliveryAttempt).filter_by(outcome="interrupted")
    ).scalar_one()
    assert interrupted == len(patients) - every


def test_when_the_database_goes_down_mid_batch_only_the_unrecorded_sends_go_twice(
    app, nurse_ada, clock, smtp
):
    """At-least-once, bounded: outcomes are recorded every ``RECORD_EVERY`` sends, so when the
    database goes away mid-batch only the sends since the last record go out again, the worker
    stops sending the rest, and after the leases nothing is lost and nothing goes a third time."""
    import sqlalchemy as sa
    from sqlalchemy import orm

    from backend.notify import jobs as notify_jobs

    every = notify_jobs.RECORD_EVERY
    _, handler = smtp
    patients = _email_reminders_due(nurse_ada, clock, 2 * every + 5)

    def database_down(_session: orm.Session) -> None:
        if len(handler.messages) > every:  # went away while the second chunk was being sent
            raise _server_closed()

    sa.event.listen(orm.Session, "before_commit", database_down)
    try:
        notify_jobs.send_due_deliveries(clock.now())
    finally:
        sa.event.remove(orm.Session, "before_commit", database_down)
    # The first chunk was recorded; the second was sent and not recorded; the third never left.
    assert len(handler.messages) == 2 * every
    first_pass = Counter(m["rcpt_tos"][0] for m in handler.messages)

    # The database is back; the leases of the claimed batch run out and a worker takes it up.
    clock.advance(timedelta(seconds=int(app.config["SCHEDULER_LEASE_SECONDS"])))
    run_pass()

    _assert_only_the_unrecorded_chunk_went_twice(handler, patients, first_pass, every)


@pytest.fixture
def postgresql_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the held connection is PostgreSQL's; SQLite records through the session")
    return database_url


def test_when_the_database_goes_down_mid_batch_with_real_commits_only_the_unrecorded_sends_go_twice(
    postgresql_only, committing_app, nurse_ada, clock, smtp
):
    """The same bound with real commits, where PostgreSQL records a chunk of accepted sends on a
    connection the delivery job holds for its batch (``record_sent_on``), not the session: its
    commit fails, the worker stops, and only that chunk goes again. The outage is the
    connection's commit failing, whichever connection makes it."""
    import sqlalchemy as sa

    from backend.notify import jobs as notify_jobs

    every = notify_jobs.RECORD_EVERY
    _, handler = smtp
    patients = _email_reminders_due(nurse_ada, clock, 2 * every + 5)
    recorded_on: list[object] = []

    def database_down(conn: sa.Connection) -> None:
        recorded_on.append(conn)
        if len(handler.messages) > every:
            raise _server_closed()

    sa.event.listen(db.engine, "commit", database_down)
    try:
        notify_jobs.send_due_deliveries(clock.now())
    finally:
        sa.event.remove(db.engine, "commit", database_down)
    assert len(handler.messages) == 2 * every
    # The claim through the session; both chunks' records on the one held connection.
    assert recorded_on[1] is recorded_on[2] is not recorded_on[0]
    first_pass = Counter(m["rcpt_tos"][0] for m in handler.messages)

    clock.advance(timedelta(seconds=int(committing_app.config["SCHEDULER_LEASE_SECONDS"])))
    run_pass()

    _assert_only_the_unrecorded_chunk_went_twice(handler, patients, first_pass, every)
