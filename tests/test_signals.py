"""The signals by which domains contribute to each other: declared, documented, connected."""

from __future__ import annotations

import pytest

from backend import signals
from backend.alerts.presenters import timeline_alerts


def test_every_declared_signal_documents_its_sender_arguments_and_return(app):
    declared = signals.declared()
    assert declared, "backend/signals.py declares no signal"
    for name, signal in declared.items():
        doc = signal.__doc__ or ""
        assert "Sender:" in doc and "Arguments:" in doc and "Returns" in doc, name


def test_every_required_signal_has_a_receiver_in_the_application(app):
    listeners = {signal.name: signals.receivers(signal, app) for signal in signals.REQUIRED}
    assert listeners == {"patient-timeline": [timeline_alerts]}


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
