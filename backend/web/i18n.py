"""French and English for the nurse pages: locale and time zone selection, value labels, formats.

The locale is the one the nurse chose with the switch (kept in the session), else the best match
of the browser's ``Accept-Language``, else the site's language. Dates and times are shown in the
site's time zone: a nurse reads the clock of the ward, not of the server.

Catalogues live in ``translations/`` (gettext ``.po``, compiled to ``.mo`` by ``make``; see
``make translations`` to extract new strings). English is the source language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from babel import dates as babel_dates
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations, lazy_gettext, lazy_pgettext
from markupsafe import Markup

from backend.auth.models import Site
from backend.auth.principal import current_principal
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE, LOCALES, accepted_locale, site_locale, staff_locale

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
SESSION_LOCALE = "locale"

_l = lazy_gettext

# --- value labels (one place, so every page says the same thing) -------------------------------

SEVERITY = {"urgent": _l("Urgent"), "high": _l("High"), "routine": _l("Routine")}
ALERT_KIND = {
    "red_flag": _l("Red flag"),
    "possible_screw_loosening": _l("Possible screw loosening"),
    "pain_recurrence": _l("Pain recurrence"),
    "call_request": _l("Call request"),
    "worsening": _l("Worsening"),
    "no_response": _l("No response"),
}
# An alert and a questionnaire have different genders in French: "ouverte", "ouvert".
ALERT_STATUS = {
    "open": lazy_pgettext("alert", "Open"),
    "acknowledged": lazy_pgettext("alert", "Acknowledged"),
    "resolved": lazy_pgettext("alert", "Resolved"),
}
OUTCOME = {
    "false_alarm": _l("False alarm"),
    "advice_given": _l("Advice given"),
    "medication_changed": _l("Medication changed"),
    "imaging_ordered": _l("Imaging ordered"),
    "ir_consultation": _l("IR consultation"),
    "sent_to_emergency": _l("Sent to the emergency department"),
    "loosening_confirmed": _l("Loosening confirmed"),
    "revision_planned": _l("Revision planned"),
    "other": _l("Other"),
}
# Resolutions the system makes itself (backend.alerts.models.SYSTEM_OUTCOMES).
SYSTEM_OUTCOME = {
    "answered_late": _l("Answered late"),
    "follow_up_suspended": _l("Follow-up suspended"),
    "follow_up_ended": _l("Follow-up ended"),
}
# Why the system cancelled or resolved something (assignments, reminders, alerts).
SYSTEM_REASON = {
    "patient_deceased": _l("the patient died"),
    "patient_withdrawn": _l("the patient withdrew from the follow-up"),
    "care_consent_withdrawn": _l("the care consent was withdrawn"),
    "patient_paused": _l("the follow-up was paused"),
    "patient_readmitted": _l("the patient was readmitted"),
    "answered_late": _l("every questionnaire it was about has been answered"),
    "passed_while_paused": _l("its window passed during a pause"),
    "passed_while_readmitted": _l("its window passed during a readmission"),
    "rescheduled": _l("moved by a correction of the procedure"),
}
STATUS_CAUSE = {
    "staff": _l("changed by staff"),
    "pause_ended": _l("end of the pause"),
    "care_consent_withdrawn": _l("the care consent was withdrawn"),
}
CONSENT_PURPOSE = {"care": _l("Telemonitoring (care)"), "research": _l("Research")}
CONSENT_DECISION = {
    "given": lazy_pgettext("consent", "Given"),
    "withdrawn": lazy_pgettext("consent", "Withdrawn"),
}
CONSENT_STATE = {**CONSENT_DECISION, "none": _l("Not recorded")}
CONSENT_METHOD = {
    "paper": _l("On paper"),
    "verbal_witnessed": _l("Verbally, with a witness"),
    "in_app": _l("In the app"),
}
ALERT_EVENT = {
    "opened": lazy_pgettext("alert", "Opened"),
    "evidence_added": _l("New evidence added"),
    "evidence_updated": _l("Answered late: evidence updated"),
    "severity_raised": _l("Severity raised"),
    "acknowledged": lazy_pgettext("alert", "Acknowledged"),
    "escalated": _l("Overdue: physicians told"),
    "resolved": lazy_pgettext("alert", "Resolved"),
    "note": _l("Note added"),
    "taken": _l("Taken in hand"),
    "assigned": _l("Assigned"),
    "released": _l("Handed back to the shared queue"),
    "snoozed": _l("Put aside"),
    "snooze_ended": _l("Back from snooze: new evidence"),
    "target_renegotiated": _l("Target renegotiated"),
    "call_attempt": _l("Call attempt"),
}
CALL_RESULT = {"no_answer": _l("Called, no answer"), "spoke": _l("Called, spoke")}
ASSIGNMENT_STATUS = {
    "pending": _l("Planned"),
    "open": lazy_pgettext("questionnaire", "Open"),
    "completed": _l("Answered"),
    "missed": _l("Missed"),
    "cancelled": _l("Cancelled"),
}
ASSIGNMENT_REASON = {"protocol": _l("Planned"), "confirmation": _l("Confirmation check-in")}
INSTRUMENT = {"checkin": _l("Check-in"), "followup": _l("Follow-up")}
PATIENT_STATUS = {
    "active": _l("Active"),
    "paused": _l("Paused"),
    "readmitted": _l("Readmitted"),
    "deceased": _l("Deceased"),
    "withdrawn": _l("Withdrawn"),
}
PROCEDURE_KIND = {
    "cementoplasty": _l("Cementoplasty"),
    "screw_fixation": _l("Screw fixation"),
    "screw_fixation_cementoplasty": _l("Cement-augmented screws"),
    "sclerotherapy": _l("Sclerotherapy"),
    "other_hardware": _l("Other hardware"),
}
LOCATION = {
    "sacrum": _l("Sacrum"),
    "sacroiliac": _l("Sacroiliac"),
    "iliac_wing": _l("Iliac wing"),
    "acetabulum": _l("Acetabulum"),
    "pubic_ramus": _l("Pubic ramus"),
    "femoral_neck": _l("Femoral neck"),
    "proximal_femur": _l("Proximal femur"),
    "vertebra": _l("Vertebra"),
    "other": _l("Other"),
}
SIDE = {
    "left": _l("Left"),
    "right": _l("Right"),
    "bilateral": _l("Bilateral"),
    "midline": _l("Midline"),
}
ETIOLOGY = {
    "osteoporotic": _l("Osteoporotic"),
    "neoplastic": _l("Neoplastic"),
    "traumatic": _l("Traumatic"),
    "cyst": _l("Cyst"),
    "other": _l("Other"),
}
BONE_QUALITY = {
    "normal": _l("Normal"),
    "osteopenic": _l("Osteopenic"),
    "osteoporotic": _l("Osteoporotic"),
    "lytic": _l("Lytic"),
    "unknown": _l("Unknown"),
}
ANAESTHESIA = {"local": _l("Local"), "sedation": _l("Sedation"), "general": _l("General")}
ANALGESICS = {
    "none": _l("None"),
    "non_opioid": _l("Non-opioid"),
    "weak_opioid": _l("Weak opioid"),
    "strong_opioid": _l("Strong opioid"),
}
WALKING_AID = {
    "none": _l("None"),
    "cane": _l("Cane"),
    "crutches": _l("Crutches"),
    "walker": _l("Walker"),
    "human_help": _l("Help from another person"),
    "unable": _l("Unable to walk"),
}
LIVING_SITUATION = {
    "alone": _l("Alone"),
    "with_partner_or_family": _l("With partner or family"),
    "assisted_living": _l("Assisted living"),
    "nursing_home": _l("Nursing home"),
    "other": _l("Other"),
}
SEX = {"female": _l("Female"), "male": _l("Male"), "other": _l("Other"), "unknown": _l("Unknown")}
CHANNEL = {"push": _l("Phone app"), "sms": _l("SMS"), "email": _l("E-mail")}
LANGUAGE = {"fr": _l("French"), "en": _l("English")}
SYMPTOM = {
    "clicking": _l("clicking"),
    "giving_way": _l("giving way"),
    "entry_point_bump": _l("a bump at the entry point"),
    "new_contralateral_pain": _l("new pain on the other side"),
    "wound_redness": _l("wound redness"),
    "wound_discharge": _l("wound discharge"),
    "fever": _l("fever"),
    "leg_weakness": _l("leg weakness"),
    "numbness": _l("numbness"),
    "bladder_bowel": _l("bladder or bowel trouble"),
    "breathlessness": _l("breathlessness"),
    "chest_pain": _l("chest pain"),
}
CHANGE = {
    "very_much_improved": _l("very much improved"),
    "much_improved": _l("much improved"),
    "minimally_improved": _l("minimally improved"),
    "no_change": _l("no change"),
    "minimally_worse": _l("minimally worse"),
    "much_worse": _l("much worse"),
    "very_much_worse": _l("very much worse"),
}
SOURCE = {"patient": _l("Patient"), "caregiver": _l("Caregiver"), "nurse": _l("Nurse")}
# The way answers come in (``Response.answered_via``): the ward sees who drifts from the app.
ANSWER_CHANNEL = {
    "app": _l("App"),
    "sms": _l("SMS link"),
    "email": _l("E-mail link"),
    "phone": _l("Phone call"),
}

LABELS: dict[str, Mapping[str, Any]] = {
    "severity": SEVERITY,
    "alert_kind": ALERT_KIND,
    "alert_status": ALERT_STATUS,
    "outcome": {**OUTCOME, **SYSTEM_OUTCOME},
    "clinical_outcome": OUTCOME,
    "system_reason": SYSTEM_REASON,
    "status_cause": STATUS_CAUSE,
    "consent_purpose": CONSENT_PURPOSE,
    "consent_decision": CONSENT_DECISION,
    "consent_state": CONSENT_STATE,
    "consent_method": CONSENT_METHOD,
    "alert_event": ALERT_EVENT,
    "call_result": CALL_RESULT,
    "assignment_status": ASSIGNMENT_STATUS,
    "assignment_reason": ASSIGNMENT_REASON,
    "instrument": INSTRUMENT,
    "patient_status": PATIENT_STATUS,
    "procedure_kind": PROCEDURE_KIND,
    "location": LOCATION,
    "side": SIDE,
    "etiology": ETIOLOGY,
    "bone_quality": BONE_QUALITY,
    "anaesthesia": ANAESTHESIA,
    "analgesics": ANALGESICS,
    "walking_aid": WALKING_AID,
    "living_situation": LIVING_SITUATION,
    "sex": SEX,
    "channel": CHANNEL,
    "answer_channel": ANSWER_CHANNEL,
    "language": LANGUAGE,
    "symptom": SYMPTOM,
    "change": CHANGE,
    "source": SOURCE,
}


def label(value: Any, vocabulary: str) -> str:
    """The words for a stored value (the value itself when it has none, never an error);
    looked up once per request and value (a queue page asks for the same few hundreds of times)."""
    if value is None:
        return ""
    # Keyed by the locale in force too: a page may render a part in another language
    # (``force_locale``: the patient's code sheet inside a nurse's page).
    key = ("label", vocabulary, value, _locale())
    memo = _request_memo()
    if memo is None:
        return _label(value, vocabulary)
    text = memo.get(key)
    if text is None:
        text = memo[key] = _label(value, vocabulary)
    return str(text)


def _label(value: Any, vocabulary: str) -> str:
    text = LABELS[vocabulary].get(value)
    return str(text) if text is not None else str(value)


def _request_memo() -> dict[tuple[Any, ...], Any] | None:
    """What the request remembers (``_per_request``); None outside a request."""
    if not has_request_context():
        return None
    memo: dict[tuple[Any, ...], Any] = g.setdefault("_i18n_memo", {})
    return memo


def _per_request(key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for the rest of the request (the language and the site do not
    change within one); computed each time outside a request."""
    memo = _request_memo()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def entered_by(attribution: Mapping[str, Any]) -> str:
    """Who entered a response (``Response.attribution``), in words: the patient or a caregiver
    and the way (the app, a reminder's SMS or e-mail link), or the nurse by the name on her
    account."""
    kind, name = attribution.get("kind"), attribution.get("display_name")
    if kind == "nurse":
        if name:
            return str(_l("Entered by %(name)s after a phone call", name=name))
        return str(_l("Entered by a nurse after a phone call"))
    via = attribution.get("channel") or "app"
    if kind == "caregiver":
        if via == "sms":
            return str(_l("Sent by a caregiver from the SMS link"))
        if via == "email":
            return str(_l("Sent by a caregiver from the e-mail link"))
        return str(_l("Sent by a caregiver in the app"))
    if via == "sms":
        return str(_l("Sent by the patient from the SMS link"))
    if via == "email":
        return str(_l("Sent by the patient from the e-mail link"))
    return str(_l("Sent by the patient in the app"))


def choices(vocabulary: str) -> list[tuple[str, str]]:
    return [(key, str(text)) for key, text in LABELS[vocabulary].items()]


# --- selection ----------------------------------------------------------------------------------


def signed_in_site() -> Site | None:
    """The signed-in staff member's site (the session's identity map makes this cheap)."""
    if not has_request_context():
        return None
    principal = current_principal()
    return db.session.get(Site, principal.site_id) if principal else None


def select_locale() -> str:
    """The header's switch, else the API's order (``backend.locales.staff_locale``): the
    nurse's own language, else the browser's, else the site's."""
    chosen = session.get(SESSION_LOCALE)
    if chosen in LOCALES:
        return str(chosen)
    principal = current_principal() if has_request_context() else None
    if principal is not None and principal.is_staff:
        return staff_locale(principal)
    match = accepted_locale(request.accept_languages)
    if match:
        return match
    site = signed_in_site()
    return site_locale(site)


def select_timezone() -> str | None:
    site = signed_in_site()
    return site.timezone if site is not None else None


def _translations() -> Any:
    """The catalogue of the locale in force (``force_locale`` included), looked up once per
    request and locale."""
    locale = _locale()
    if not has_request_context():
        return get_translations()
    kept = g.get("_i18n_translations")
    if kept is None or kept[0] is not locale:
        kept = (locale, get_translations())
        g._i18n_translations = kept
    return kept[1]


def _locale() -> Any:
    """Flask-Babel's ``get_locale()``, without its cost when the request has chosen already: the
    locale it keeps in ``g._flask_babel.babel_locale`` (where ``force_locale`` puts its own
    too). Flask-Babel finds its context again at each call (``if not g``, ``hasattr``), and a
    queue page asked about 530 times, a tenth of its CPU."""
    try:
        locale = g._flask_babel.babel_locale
    except (AttributeError, RuntimeError):  # not chosen yet, or outside an application context
        return get_locale()
    return locale if locale is not None else get_locale()


def current_locale() -> str:
    return str(_locale() or FALLBACK_LOCALE)


def _babel_locale() -> Any:
    """The request's Babel locale as it is (honouring ``force_locale``), for the formats: given
    its name instead, Babel parses it again at every call (a queue page formats a hundred)."""
    return _locale() or FALLBACK_LOCALE


def _gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's ``gettext`` (the catalogue of the locale in force, then ``%`` with the
    variables), from the catalogue kept for the request (``_translations``): a ``lazy_gettext``
    made and read at once costs a ``LazyString`` and Flask-Babel's look-ups each time."""
    text: str = _translations().ugettext(string)
    return text % variables if variables else text


def site_zone() -> Any:
    from zoneinfo import ZoneInfo

    return _per_request(("zone",), lambda: ZoneInfo(select_timezone() or "Europe/Paris"))


# --- formats (Babel, in the site's zone) --------------------------------------------------------


DATETIME_PATTERN = "d MMM y, HH:mm"


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return format_datetime_in(value, site_zone(), _babel_locale())


def format_datetime_in(value: datetime, zone: Any, locale: Any) -> str:
    """``format_datetime`` in a zone and locale the caller holds (a page of rows: once each)."""
    return babel_dates.format_datetime(value, DATETIME_PATTERN, tzinfo=zone, locale=locale)


def format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(site_zone()).date()
    return babel_dates.format_date(value, "d MMM y", locale=_babel_locale())


def format_age(delta: timedelta) -> str:
    """How long ago, in words ("3 hours", "2 days")."""
    return format_age_in(delta, _babel_locale())


def format_age_in(delta: timedelta, locale: Any) -> str:
    """``format_age`` in a locale the caller holds."""
    return babel_dates.format_timedelta(delta, granularity="minute", threshold=1.0, locale=locale)


def ago(value: datetime, now: datetime) -> str:
    """ "3 hours ago", "just now"."""
    return ago_in(value, now, _translations().ugettext, _babel_locale())


def ago_in(value: datetime, now: datetime, gettext: Callable[[str], str], locale: Any) -> str:
    """``ago`` with the catalogue's ``gettext`` and the locale the caller holds."""
    delta = now - value
    if delta < timedelta(minutes=1):
        return gettext("just now")
    return gettext("%(age)s ago") % {"age": format_age_in(delta, locale)}


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def years_old(born: date) -> int:
    """Age in whole years today, on the site's calendar."""
    from backend.clock import utcnow

    # Today, once per request (a queue page asks for fifty ages).
    today = _per_request(("today",), lambda: utcnow().astimezone(site_zone()).date())
    return years_between(born, today)


def time_element(value: datetime | None) -> Markup:
    """A ``<time>`` with the machine-readable instant and the local reading."""
    if value is None:
        return Markup("")
    # ``%`` escapes each value as ``format`` does, without ``string.Formatter``'s parse of the
    # template at every call (a queue page has fifty).
    return Markup('<time datetime="%s">%s</time>') % (value.isoformat(), format_datetime(value))


def number(value: Any) -> str:
    """A score for reading: 2.5 is "2,5" in French (``backend.alerts.wording.number``)."""
    from backend.alerts.wording import number as in_words

    return in_words(value, current_locale())


# --- wiring -------------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    compiled = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.mo"
    if not compiled.exists():  # the pages would be in English whatever the nurse chose
        log.warning(
            "the French catalogue is not compiled: `make run` and `make test` compile it "
            "(pybabel compile -d backend/web/translations)"
        )
    # The templates' gettext as Flask-Babel installs it, but with the catalogue kept for the
    # request's locale: Flask-Babel finds its domain, the locale, its name and its cache again at
    # every call, and a queue page translates about 150 strings.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.filters.update(
        label=label,
        entered_by=entered_by,
        datetime=format_datetime,
        date=format_date,
        when=time_element,
        number=number,
        years_old=years_old,
    )
    app.jinja_env.globals.update(choices=choices, ago=ago, LOCALES=LOCALES)
