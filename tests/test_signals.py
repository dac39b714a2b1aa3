"""The signals by which domains contribute to each other: declared, documented, connected."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backend import signals
from backend.alerts import jobs as alert_jobs
from backend.alerts import services as alerts
from backend.alerts.presenters import timeline_alerts
from backend.fhir import bulk as fhir_bulk
from backend.notify import record as outbox
from backend.research import jobs as research_jobs
from backend.schedule import services as schedule

EMPTY = ("[]", "{}", "set()", "list()", "dict()")
BACKEND = Path(__file__).resolve().parent.parent / "backend"


def test_every_declared_signal_documents_its_sender_arguments_and_return(app):
    declared = signals.declared()
    assert declared, "backend/signals.py declares no signal"
    for name, signal in declared.items():
        doc = signal.__doc__ or ""
        assert "Sender:" in doc and "Arguments:" in doc and "Returns" in doc, name


def test_every_required_signal_has_a_receiver_in_the_application(app):
    # Receivers of one signal run in no promised order: compare them as sets.
    listeners = {signal.name: set(signals.receivers(signal, app)) for signal in signals.REQUIRED}
    assert listeners == {
        "patient-timeline": {timeline_alerts},
        "follow-up-stopped": {
            alerts.on_follow_up_stopped,
            schedule.on_follow_up_stopped,
            outbox.on_follow_up_stopped,
        },
        "response-recorded": {alerts.on_response},
        "questionnaire-missed": {alerts.on_missed},
        "alert-raised": {alert_jobs.announce},
        "alert-news": {alert_jobs.announce_news},
        "response-advice": {alerts.emergency_advice},
        "scheduler-jobs": {
            alert_jobs.scheduler_jobs,
            research_jobs.scheduler_jobs,
            fhir_bulk.scheduler_jobs,
        },
        "staff-texts": {alert_jobs.staff_texts},
        "outbox-still-wanted": {schedule.unwanted_reminders},
    }


def test_every_declared_signal_says_who_must_listen(app):
    # A signal nobody is required to answer would be a hook list again: optional, forgettable.
    assert set(signals.declared().values()) == set(signals.REQUIRED)
    for signal in signals.REQUIRED:
        assert "Required:" in (signal.__doc__ or ""), signal.name


@pytest.mark.parametrize("name", sorted(s.name for s in signals.REQUIRED))
def test_an_application_missing_the_receivers_of_a_required_signal_refuses_to_start(app, name):
    signal = signals.declared()[name]
    for receiver in signals.receivers(signal, app):
        signal.disconnect(receiver, sender=app)
    with pytest.raises(RuntimeError, match=name):
        signals.check_required(app)


def test_no_module_keeps_a_list_of_callbacks_for_others_to_fill():
    # A module-level collection created empty is filled later by whoever remembers to (the
    # hook lists signals replace: response, missed, alert, advice, jobs, demo seeds on main).
    found = []
    for path in BACKEND.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is not None and ast.unparse(value) in EMPTY:
                found.append(f"{path.relative_to(BACKEND)}:{node.lineno}")
    assert found == []


def test_a_receiver_connected_for_a_block_listens_only_during_it(app):
    def extra(_app, **_kwargs):
        return {}

    with signals.connected(signals.patient_timeline, extra, app):
        assert extra in signals.receivers(signals.patient_timeline, app)
    assert extra not in signals.receivers(signals.patient_timeline, app)


def test_a_stopped_follow_up_without_its_receivers_refuses_to_start(app):
    for receiver in signals.receivers(signals.follow_up_stopped, app):
        signals.follow_up_stopped.disconnect(receiver, sender=app)
    with pytest.raises(RuntimeError, match="follow-up-stopped"):
        signals.check_required(app)


def test_an_application_whose_timeline_has_no_alerts_receiver_refuses_to_start(app):
    signals.patient_timeline.disconnect(timeline_alerts, sender=app)
    with pytest.raises(RuntimeError, match="patient-timeline"):
        signals.check_required(app)


def test_a_receiver_disconnected_from_one_application_still_serves_another(app, database_url):
    from backend import create_app

    other = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url})
    signals.patient_timeline.disconnect(timeline_alerts, sender=app)
    assert signals.receivers(signals.patient_timeline, app) == []
    assert signals.receivers(signals.patient_timeline, other) == [timeline_alerts]
