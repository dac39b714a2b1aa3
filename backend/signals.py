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

The other module-level hook lists (response stored, questionnaire missed, alert opened, the
phone's advice, scheduler jobs, demo seeds) are to join this module the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blinker import NamedSignal, Namespace
from flask import Flask

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

# Signal -> what its receivers must provide between them (checked at start-up and by a test).
REQUIRED: dict[NamedSignal, str] = {
    patient_timeline: "the timeline's `alerts` section (backend.alerts.presenters)",
    follow_up_stopped: "alerts, reminders and notifications settled for a stopped follow-up",
}

Receiver = Callable[..., Any]


def declared() -> dict[str, NamedSignal]:
    """Every signal declared in this module, by name."""
    return dict(_signals)


def receivers(signal: NamedSignal, app: Flask) -> list[Receiver]:
    """The receivers ``app`` would call for ``signal``."""
    return list(signal.receivers_for(app))


def check_required(app: Flask) -> None:
    """Refuse to build an application in which a required signal has no receiver."""
    missing = [
        f"{signal.name} ({needed})"
        for signal, needed in REQUIRED.items()
        if not receivers(signal, app)
    ]
    if missing:
        raise RuntimeError(f"No receiver connected for: {', '.join(missing)}")
