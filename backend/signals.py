"""The signals by which one domain adds to another's output or reacts to its events.

Every signal is declared here, once, with its sender, its arguments and what a receiver
returns (indico's ``core/signals`` is the model). A domain never keeps a list of callbacks that
someone must remember to fill: it sends a signal declared here, and the domains that take part
connect their receivers in ``create_app`` (``backend._connect_signals``), for that application
only (``sender=app``), so two applications built in one process (tests build many) never share
receivers and a test can list who listens to what (``receivers``).

A signal whose receivers produce something the API contract promises is *required*: an
application without a receiver for it refuses to start (``check_required``), and a test checks
every declared signal's receivers on the real application.

Sending: ``signal.send(current_app._get_current_object(), **arguments)`` (the application is
the sender), which returns ``[(receiver, returned value), ...]``. Receivers run in the caller's
transaction; they flush but never commit, and load what they return in a bounded number of
queries (never one per row).

``send`` below does that and returns the values. No domain keeps a module-level list of
callbacks (a test forbids it); docs/design.md draws who sends what to whom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from blinker import NamedSignal, Namespace
from flask import Flask, current_app

_signals = Namespace()

patient_timeline: NamedSignal = _signals.signal(
    "patient-timeline",
    doc="""Sections another domain adds to a patient's timeline (``GET
    /patients/{id}/timeline`` and the nurse's patient page).

    Sender: the application. Arguments: ``patient`` (``Patient``, already site-checked),
    ``now`` (aware UTC ``datetime``), ``locale`` (``"fr"`` or ``"en"``: the caller's language
    for any text). Returns a mapping of section name to the list of its items, as
    ``TimelineSchema`` serialises them. Required: the alerts domain returns ``alerts`` (the
    patient's alerts, oldest first, the summary in ``locale``).""",
)

follow_up_stopped: NamedSignal = _signals.signal(
    "follow-up-stopped",
    doc="""A patient's follow-up was suspended (paused, readmitted) or ended (deceased,
    withdrawn, care consent withdrawn), in the transaction of that change.

    Sender: the application. Arguments: ``patient`` (``Patient``, its ``status`` already the
    new one), ``now`` (aware UTC ``datetime``), ``ended`` (``bool``: True when nothing will
    resume), ``reason`` (``str``, the code a nurse reads: ``patient_deceased``,
    ``patient_withdrawn``, ``care_consent_withdrawn``, ``patient_paused``,
    ``patient_readmitted``). Returns nothing. Required: the alert engine resolves the open
    ``no_response`` alert (clinical alerts stay for the nurse), the scheduler settles the
    pending reminders, the outbox cancels the patient's notifications not sent yet.""",
)

outbox_still_wanted: NamedSignal = _signals.signal(
    "outbox-still-wanted",
    doc="""Which messages of a delivery batch their domain still wants sent, asked just before
    they are sent (the outbox knows no questionnaire: it keeps the ``wanted_key`` the enqueuing
    domain gave, and asks that domain about it).

    Sender: the application. Arguments: ``keys`` (``set[str]``: the ``wanted_key`` of every
    notification in the batch, such as ``questionnaire:<hex id>``), ``now`` (aware UTC
    ``datetime``). Returns a mapping of key to ``(status, reason)`` for the keys its domain
    owns and no longer wants, ``status`` being ``cancelled`` (no longer needed: ``answered``)
    or ``expired`` (too late: ``questionnaire_closed``); keys it does not own or still wants
    are left out. One bounded query per batch, whatever its size. Required: the schedule
    answers for questionnaire reminders (``schedule.services.unwanted_reminders``).""",
)

response_recorded: NamedSignal = _signals.signal(
    "response-recorded",
    doc="""A response was stored (any source: the phone, a caregiver, a nurse's entry), in the
    transaction that stored it and after its questionnaire was completed.

    Sender: the application. Arguments: ``response`` (``Response``, flushed), ``patient``
    (``Patient``), ``procedure`` (``Procedure`` the response is about), ``now`` (aware UTC
    ``datetime``). Returns nothing; a receiver that raises rolls the response back with it.
    Required: the alert engine re-evaluates the patient (``alerts.services.on_response``), so
    an answer and the alerts it raises commit together.""",
)

questionnaire_missed: NamedSignal = _signals.signal(
    "questionnaire-missed",
    doc="""A followed patient's questionnaire closed unanswered (marked ``missed``), in the
    savepoint of that change (a receiver that raises leaves it open for the next pass).

    Sender: the application. Arguments: ``assignment`` (``Assignment``, status ``missed``),
    ``patient`` (``Patient``), ``now`` (aware UTC ``datetime``). Returns nothing. Required:
    the alert engine re-evaluates the patient (``alerts.services.on_missed``: no_response).""",
)

alert_raised: NamedSignal = _signals.signal(
    "alert-raised",
    doc="""An alert was opened, or its severity rose, in the transaction of that change.

    Sender: the application. Arguments: ``alert`` (``Alert``, flushed, its severity the new
    one), ``opened`` (``bool``: True when new, False when its severity rose), ``now`` (aware
    UTC ``datetime``). Returns nothing. Required: the nurses are e-mailed about urgent and
    high alerts through the outbox (``alerts.jobs.announce``).""",
)

alert_news: NamedSignal = _signals.signal(
    "alert-news",
    doc="""New evidence came to an alert a nurse has acknowledged (its severity unchanged: a rise
    is ``alert_raised``), in the transaction of that change. The nurse may be acting on what she
    read then (a call, advice given) and would not look again before resolving it.

    Sender: the application. Arguments: ``alert`` (``Alert``, flushed, its evidence the new
    one), ``response_id`` (``str``: the latest answer that brought the evidence), ``now`` (aware
    UTC ``datetime``). Returns nothing. Required: the nurses are e-mailed about urgent and high
    alerts through the outbox, once per answer (``alerts.jobs.announce_news``).""",
)

response_advice: NamedSignal = _signals.signal(
    "response-advice",
    doc="""What the phone must show at once after a response (``advice`` of the response).

    Sender: the application. Arguments: ``response`` (``Response``), ``patient``
    (``Patient``). Returns a mapping (``{"emergency": bool, "message": str}``, the message in
    the patient's language) or None when this receiver has nothing to say; the first mapping
    wins. Required: the alert engine gives the emergency advice when the response raised or
    added to a red flag (``alerts.services.emergency_advice``).""",
)

scheduler_jobs: NamedSignal = _signals.signal(
    "scheduler-jobs",
    doc="""The jobs other domains add to every scheduler pass (``flask scheduler run`` and
    ``run-once``), after the schedule's own (``backend.schedule.jobs.OWN``).

    Sender: the application. Arguments: none. Returns a sequence of jobs, each a function
    ``(now) -> int`` handling one small batch and returning how many rows it handled (run in
    that order). Required: the alert engine's escalations and routine digests
    (``alerts.jobs.scheduler_jobs``), the research exports (``research.jobs.scheduler_jobs``)
    and the FHIR Bulk exports with their expiry (``fhir.bulk.scheduler_jobs``).""",
)

staff_texts: NamedSignal = _signals.signal(
    "staff-texts",
    doc="""The staff e-mail texts other domains send through the outbox (the outbox holds
    only the patients' reminder text; it knows nothing of alerts).

    Sender: the application. Arguments: none. Returns a mapping of text key to ``{locale:
    Text}``, one ``Text`` for each of ``backend.locales.LOCALES``, with no health content.
    Required: the alert engine's texts (``alert_opened``, ``alert_news``, ``alert_overdue``,
    ``alerts_digest``: ``alerts.jobs.staff_texts``).""",
)

# Signal -> what its receivers must provide between them (checked at start-up and by a test,
# which also names the receivers expected: tests/test_signals.py).
REQUIRED: dict[NamedSignal, str] = {
    patient_timeline: "the timeline's `alerts` section (backend.alerts.presenters)",
    follow_up_stopped: "alerts, reminders and notifications settled for a stopped follow-up",
    response_recorded: "the alert engine's evaluation of every stored response",
    questionnaire_missed: "the alert engine's evaluation of every missed questionnaire",
    alert_raised: "the nurses' e-mail about an urgent or high alert",
    alert_news: "the nurses' e-mail about new evidence on an acknowledged alert",
    response_advice: "the emergency advice after a red flag",
    scheduler_jobs: "the alert escalations and digests, the research and FHIR Bulk exports",
    staff_texts: "the alert e-mails' texts",
    outbox_still_wanted: "whether a questionnaire still needs its reminder (backend.schedule)",
}

Receiver = Callable[..., Any]


def declared() -> dict[str, NamedSignal]:
    """Every signal declared in this module, by name."""
    return dict(_signals)


def receivers(signal: NamedSignal, app: Flask) -> list[Receiver]:
    """The receivers ``app`` would call for ``signal``."""
    return list(signal.receivers_for(app))


def send(signal: NamedSignal, **arguments: Any) -> list[Any]:
    """Send ``signal`` from the current application; the values its receivers returned."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return [value for _receiver, value in signal.send(app, **arguments)]


@contextmanager
def connected(signal: NamedSignal, receiver: Receiver, app: Flask) -> Iterator[Receiver]:
    """``receiver`` listens to ``signal`` from ``app`` for the block's duration (tests)."""
    signal.connect(receiver, sender=app, weak=False)
    try:
        yield receiver
    finally:
        signal.disconnect(receiver, sender=app)


def check_required(app: Flask) -> None:
    """Refuse to build an application in which a required signal has no receiver."""
    missing = [
        f"{signal.name} ({needed})"
        for signal, needed in REQUIRED.items()
        if not receivers(signal, app)
    ]
    if missing:
        raise RuntimeError(f"No receiver connected for: {', '.join(missing)}")
