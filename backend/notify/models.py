"""Outbox rows: a notification, one delivery per channel, one row per attempt.

- ``Notification``: one message for one recipient (a patient or a staff member), in one locale,
  useful until ``expires_at``. ``dedupe_key`` is unique: enqueueing the same thing twice (a
  retried job, two schedulers) stores it once. ``wanted_key`` is the enqueuing domain's name for
  what the message is about (``questionnaire:<id>``): before each send the outbox asks that
  domain whether it still wants it (``backend.signals.outbox_still_wanted``), without knowing
  what the key means.
- ``Delivery``: the message on one channel, in the patient's order of preference. The first is
  ``pending``; the others wait in ``standby`` and are woken one at a time when the channel before
  them fails for good. ``next_attempt_at`` (pending) and ``claimed_until`` (sending: the lease)
  are the due times the delivery job claims by, each in an index ending with ``id`` so that it
  gives the claim's order and a batch is read off it without sorting what is due.
- ``DeliveryAttempt``: one provider call (or a decision not to make one), never updated after
  its outcome is known.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import UUIDPrimaryKey
from backend.extensions import db

NOTIFICATION_STATUSES = ("pending", "sent", "failed", "expired", "cancelled")
DELIVERY_STATUSES = ("standby", "pending", "sending", "sent", "failed", "expired", "cancelled")
CHANNELS = ("push", "sms", "email")
# null: in flight (a worker holds the lease); the others are final.
ATTEMPT_OUTCOMES = (
    "sent",  # the provider accepted it
    "retry",  # transient failure: retried later on the same channel
    "failed",  # permanent failure: the contact point is dead, next channel
    "no_route",  # not sent: no contact point, or the channel is not configured here
    "abandoned",  # not sent: the worker's lease ran out before it could send
    "interrupted",  # the worker died after claiming it: it may or may not have been sent
)


LEASE_RULE = (
    "(status = 'sending') = (claimed_by IS NOT NULL AND claimed_until IS NOT NULL) "
    "AND (claimed_by IS NULL) = (claimed_until IS NULL)"
)
PENDING = sa.text("status = 'pending'")
SENDING = sa.text("status = 'sending'")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Notification(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(_in("status", NOTIFICATION_STATUSES), name="status_known"),
        sa.CheckConstraint(
            "(patient_id IS NULL) <> (user_id IS NULL)", name="exactly_one_recipient"
        ),
        # Only staff notifications have a user: a patient's (every reminder) writes no entry
        # here (migration 0021). Its reader is the foreign-key check of a change to users.
        sa.Index(
            "ix_notifications_staff_user",
            "user_id",
            postgresql_where=sa.text("user_id IS NOT NULL"),
            sqlite_where=sa.text("user_id IS NOT NULL"),
        ),
    )

    kind: Mapped[str] = mapped_column(sa.String(32))
    text_key: Mapped[str] = mapped_column(sa.String(64))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"))
    locale: Mapped[str] = mapped_column(sa.String(2))
    link: Mapped[str | None] = mapped_column(sa.String(500))
    collapse_key: Mapped[str | None] = mapped_column(sa.String(100))
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    wanted_key: Mapped[str | None] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="notification", order_by="Delivery.position", lazy="selectin"
    )


class Delivery(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("notification_id", "channel"),
        sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        sa.CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
        # A lease (``claimed_by``, ``claimed_until``) exists exactly while a delivery is being
        # sent: recording a send checks its lease by ``claimed_by`` alone (notify/record.py).
        sa.CheckConstraint(LEASE_RULE, name="lease_while_sending"),
        # The two due-time indexes the delivery job claims by, in its order (due time, id),
        # each holding only the deliveries it claims from: a sent delivery is in neither.
        sa.Index(
            "ix_deliveries_pending_due",
            "next_attempt_at",
            "id",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
        sa.Index(
            "ix_deliveries_sending_lease",
            "claimed_until",
            "id",
            postgresql_where=SENDING,
            sqlite_where=SENDING,
        ),
    )

    # Indexed by the unique (notification_id, channel), which leads with it.
    notification_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("notifications.id"))
    channel: Mapped[str] = mapped_column(sa.String(8))
    position: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16))
    status_reason: Mapped[str | None] = mapped_column(sa.String(64))
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100))
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    notification: Mapped[Notification] = relationship(back_populates="deliveries")


class DeliveryAttempt(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "delivery_attempts"
    __table_args__ = (
        sa.CheckConstraint(
            f"outcome IS NULL OR {_in('outcome', ATTEMPT_OUTCOMES)}", name="outcome_known"
        ),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("deliveries.id"), index=True)
    number: Mapped[int]
    channel: Mapped[str] = mapped_column(sa.String(8))
    device_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("devices.id"))
    worker: Mapped[str] = mapped_column(sa.String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    provider_id: Mapped[str | None] = mapped_column(sa.String(255))
    # TransportError.code and message: status codes and provider enums, never a recipient.
    error_code: Mapped[str | None] = mapped_column(sa.String(32))
    error: Mapped[str | None] = mapped_column(sa.String(255))
    retry_at: Mapped[datetime | None]
