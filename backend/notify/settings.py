"""The outbox's settings, read once from the application configuration into one object.

The claim, the send loop and the record all take this object instead of a handful of loose
arguments, and none of them reads ``current_app.config`` behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from backend.notify.quiet_hours import QuietHours


@dataclass(frozen=True)
class OutboxSettings:
    batch_size: int  # SCHEDULER_BATCH_SIZE: deliveries claimed, sent and recorded together
    lease_seconds: int  # SCHEDULER_LEASE_SECONDS
    max_attempts: int  # NOTIFICATION_MAX_ATTEMPTS (per channel)
    retry_base: float  # NOTIFICATION_RETRY_BASE_SECONDS
    retry_cap: float  # NOTIFICATION_RETRY_MAX_SECONDS
    timeout_seconds: int  # NOTIFICATION_TIMEOUT_SECONDS (one provider call)
    quiet_hours: QuietHours  # QUIET_HOURS, in each patient's zone

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutboxSettings:
        return cls(
            batch_size=int(config["SCHEDULER_BATCH_SIZE"]),
            lease_seconds=int(config["SCHEDULER_LEASE_SECONDS"]),
            max_attempts=int(config["NOTIFICATION_MAX_ATTEMPTS"]),
            retry_base=float(config["NOTIFICATION_RETRY_BASE_SECONDS"]),
            retry_cap=float(config["NOTIFICATION_RETRY_MAX_SECONDS"]),
            timeout_seconds=int(config["NOTIFICATION_TIMEOUT_SECONDS"]),
            quiet_hours=config["QUIET_HOURS"],
        )


def outbox_settings() -> OutboxSettings:
    """The current application's outbox settings."""
    return OutboxSettings.from_config(current_app.config)
