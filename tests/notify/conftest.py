"""Outbox fixtures: in-memory transports on every route, and helpers to read what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from backend.extensions import db
from backend.notify.channels import install_channels
from backend.notify.models import Delivery, DeliveryAttempt, Notification
from notifications import MemoryTransport
from tests.notifications.conftest import (  # noqa: F401 - the provider stand-ins, shared
    apns_key,
    apns_key_pem,
    apns_stand_in,
    fcm_stand_in,
    service_account_info,
    service_account_key,
    twilio_stand_in,
)


@dataclass
class MemoryChannels:
    android: MemoryTransport
    ios: MemoryTransport
    sms: MemoryTransport
    email: MemoryTransport

    def all_sent(self) -> list[Any]:
        return [*self.android.sent, *self.ios.sent, *self.sms.sent, *self.email.sent]


@pytest.fixture
def memory_channels(app: Flask) -> MemoryChannels:
    """Every route on a MemoryTransport: the provider boundary, nothing else, is replaced."""
    channels = MemoryChannels(
        MemoryTransport("push"),
        MemoryTransport("push"),
        MemoryTransport("sms"),
        MemoryTransport("email"),
    )
    install_channels(
        app,
        {
            "push:android": channels.android,
            "push:ios": channels.ios,
            "sms": channels.sms,
            "email": channels.email,
        },
    )
    return channels


def notifications_of(patient_id: Any) -> list[Notification]:
    return list(
        db.session.execute(
            db.select(Notification)
            .filter_by(patient_id=patient_id)
            .order_by(Notification.created_at, Notification.id)
        ).scalars()
    )


def attempts_of(delivery: Delivery) -> list[DeliveryAttempt]:
    return list(
        db.session.execute(
            db.select(DeliveryAttempt)
            .filter_by(delivery_id=delivery.id)
            .order_by(DeliveryAttempt.number)
        ).scalars()
    )
