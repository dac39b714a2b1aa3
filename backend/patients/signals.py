"""Signals of the patient lifecycle (blinker, which Flask ships; indico's ``core/signals`` is the
model). Receivers are connected in ``create_app`` by the domains that react; each runs in the
transaction of the status change and flushes, never commits.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

follow_up_stopped = _signals.signal(
    "follow-up-stopped",
    doc="""The follow-up of a patient was suspended (paused, readmitted) or ended (deceased,
    withdrawn, care consent withdrawn).

    Sender: the ``Patient`` (its ``status`` already the new one). Keyword arguments:
    ``now`` (datetime, UTC); ``ended`` (bool: True when nothing will resume); ``reason``
    (str, the code a nurse reads: ``patient_deceased``, ``patient_withdrawn``,
    ``care_consent_withdrawn``, ``patient_paused``, ``patient_readmitted``).

    Receivers: the alert engine resolves the open ``no_response`` alert (clinical alerts stay
    for the nurse); the scheduler settles the pending reminders; the outbox cancels the
    patient's pending notifications.""",
)
