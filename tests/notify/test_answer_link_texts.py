"""A reminder sent by SMS or e-mail carries a single-use web link; an SMS stays one segment.

Marcel, 86 (Lyon, French), has no app: his day-1 check-in opens at T0 and is reminded by SMS.
"""

from __future__ import annotations

import string

import pytest

from backend.config import ANSWER_LINK_BASE_MAX, ConfigError, load_config
from backend.extensions import db
from backend.notify.texts import LOCALES, PATIENT_TEXTS, render
from backend.questionnaires import links
from backend.questionnaires.models import AnswerLink
from backend.schedule.worker import run_pass
from notifications import Message
from notifications.sms import TwilioSmsTransport
from tests.factories import make_patient, make_procedure

# GSM 03.38 basic character set (one septet each; the escape and the extension table, which
# cost two septets and are unknown to some phones, are left out on purpose).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SEGMENT = 160

# The longest base the configuration accepts, and the longest token (always 27 characters).
LONGEST_BASE = "https://" + "a" * (ANSWER_LINK_BASE_MAX - len("https://") - len(".fr/a")) + ".fr/a"
LONGEST_LINK = f"{LONGEST_BASE}/{'_' * links.TOKEN_LENGTH}"


def sms_body(locale: str, link: str) -> str:
    """The text Twilio is asked to send (the transport's own composition)."""
    text = render(PATIENT_TEXTS, "questionnaire_reminder", locale)
    transport = TwilioSmsTransport("AC" + "0" * 32, "token", from_number="+33100000000")
    try:
        return transport.form(
            Message(to="+33612345678", title=text.title, body=text.body, link=link)
        )["Body"]
    finally:
        transport.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locales_sms_with_the_longest_link_is_one_plain_gsm7_segment(locale, tmp_path):
    assert len(LONGEST_BASE) == ANSWER_LINK_BASE_MAX
    assert (
        load_config(
            str(tmp_path), environ={"APP_ENV": "testing", "ANSWER_LINK_BASE_URL": LONGEST_BASE}
        )["ANSWER_LINK_BASE_URL"]
        == LONGEST_BASE
    )
    body = sms_body(locale, LONGEST_LINK)
    assert body.endswith(LONGEST_LINK)
    assert len(body) <= SEGMENT, (locale, len(body))
    assert set(body) <= GSM7_BASIC, set(body) - GSM7_BASIC


def test_a_token_is_made_of_plain_gsm7_characters_only():
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert alphabet <= GSM7_BASIC


@pytest.mark.parametrize(
    "base",
    [
        LONGEST_BASE + "b",  # one character too many: the SMS could take two segments
        "https://suivi.chu.example/a~b",  # "~" is in GSM-7's extension table (two septets)
        "https://suivi.chu.example/{a}",
        "ftp://suivi.chu.example/a",
    ],
)
def test_a_link_base_that_could_break_the_segment_stops_start_up(base, tmp_path):
    with pytest.raises(ConfigError, match="ANSWER_LINK_BASE_URL"):
        load_config(str(tmp_path), environ={"APP_ENV": "testing", "ANSWER_LINK_BASE_URL": base})


def test_production_with_sms_wants_an_https_link_base(tmp_path):
    environ = {
        "APP_ENV": "production",
        "SECRET_KEY": "k" * 40,
        "REDIS_URL": "redis://r:6379/0",
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "t",
        "TWILIO_FROM": "+33100000000",
    }
    with pytest.raises(ConfigError, match="https"):
        load_config(
            str(tmp_path), environ={**environ, "ANSWER_LINK_BASE_URL": "http://suivi.example/a"}
        )
    config = load_config(
        str(tmp_path), environ={**environ, "STAFF_BASE_URL": "https://suivi.example"}
    )
    assert config["ANSWER_LINK_BASE_URL"] == "https://suivi.example/a"


@pytest.mark.parametrize("app_config", [{"ANSWER_LINK_BASE_URL": LONGEST_BASE}])
def test_an_sms_reminder_carries_a_fresh_link_that_opens_its_questionnaire(
    app, nurse_ada, memory_channels, app_config
):
    marcel = make_patient(nurse_ada, contact_channels=["sms"])
    make_procedure(nurse_ada, marcel)

    run_pass()

    (sent,) = memory_channels.sms.sent
    assert sent.link.startswith(LONGEST_BASE + "/")
    token = sent.link.rsplit("/", 1)[1]
    assert len(sms_body("fr", sent.link)) <= SEGMENT
    (row,) = db.session.execute(db.select(AnswerLink)).scalars()
    assert token not in {row.token_hash, str(row.id)} and row.channel == "sms"
    opened = links.open_link(token, now=row.created_at)
    assert opened.assignment.day == 1 and opened.patient.id == marcel.id
    # Nothing of the token stays in the outbox's rows either.
    from backend.notify.models import Notification

    (notification,) = db.session.execute(db.select(Notification)).scalars()
    assert token not in (notification.link or "")


def test_a_push_reminder_keeps_the_apps_deep_link_and_issues_no_web_link(
    app, nurse_ada, memory_channels
):
    from tests.notify.test_outbox import enroll_phone

    marcel = make_patient(nurse_ada, contact_channels=["push", "sms"])
    enroll_phone(marcel)
    make_procedure(nurse_ada, marcel)

    run_pass()

    (sent,) = memory_channels.android.sent
    assert sent.link.startswith("irfollowup://questionnaires/")
    assert db.session.execute(db.select(AnswerLink)).first() is None
