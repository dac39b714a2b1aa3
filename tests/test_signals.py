"""The signals by which domains contribute to each other: declared, documented, connected."""

from __future__ import annotations

import pytest

from backend import signals
from backend.alerts import services as alerts
from backend.alerts.presenters import timeline_alerts
from backend.notify import services as outbox
from backend.schedule import services as schedule


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
    }


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
