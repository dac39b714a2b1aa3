"""The shared interface: messages, errors, Retry-After parsing, masking."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from notifications import (
    ERROR_CODES,
    ApnsTransport,
    ConsoleTransport,
    FcmTransport,
    MemoryTransport,
    Message,
    SendResult,
    SmtpTransport,
    Transport,
    TransportError,
    TwilioSmsTransport,
    mask_recipient,
    parse_retry_after,
)


def test_retry_after_in_delta_seconds_is_parsed() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 30 ") == 30.0


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert later.endswith("GMT")
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(90.0)


def test_retry_after_in_the_past_means_retry_now() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    earlier = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf"])
def test_retry_after_that_is_missing_or_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_transport_error_carries_what_to_do_next() -> None:
    error = TransportError("x", permanent=False, retry_after=3.0, code="rate_limited")
    assert (error.permanent, error.retry_after, error.code) == (
        False,
        3.0,
        "rate_limited",
    )
    assert str(error) == "x"
    assert "rate_limited" in ERROR_CODES and "auth" in ERROR_CODES


@pytest.mark.parametrize(
    ("recipient", "masked"),
    [
        ("+33612345678", "+33*******78"),
        ("marie.curie@example.org", "m***@example.org"),
        ("f" * 64, "ffff…(64)"),
        ("short", "*****"),
    ],
)
def test_recipients_are_masked_for_logs(recipient: str, masked: str) -> None:
    assert mask_recipient(recipient) == masked


def test_a_message_repr_hides_body_title_and_recipient() -> None:
    message = Message(
        to="marie.curie@example.org",
        title="Chemotherapy follow-up",
        body="How is your nausea today?",
        idempotency_key="d-1",
    )
    text = repr(message)
    assert "marie.curie" not in text
    assert "nausea" not in text and "Chemotherapy" not in text
    assert "d-1" in text


def test_a_message_is_immutable_and_has_an_empty_data_payload_by_default() -> None:
    message = Message(to="x@example.org", title="t", body="b")
    assert dict(message.data) == {}
    with pytest.raises(AttributeError):
        message.title = "other"  # type: ignore[misc]


def test_every_transport_satisfies_the_protocol(
    apns_key_pem: str, service_account_info: dict[str, str]
) -> None:
    transports: list[object] = [
        SmtpTransport("127.0.0.1", 25, from_addr="noreply@example.org"),
        FcmTransport.from_service_account(service_account_info),
        ApnsTransport("TEAM", "KEY", apns_key_pem, "org.example.app"),
        TwilioSmsTransport("AC1", "secret", "+15005550006"),
        ConsoleTransport(stream=io.StringIO()),
        MemoryTransport("push"),
    ]
    channels = []
    for transport in transports:
        assert isinstance(transport, Transport)
        channels.append(transport.channel)
        close = getattr(transport, "close", None)
        if close:
            close()
    assert channels == ["email", "push", "push", "sms", "console", "push"]
    assert SendResult(provider_id="p").provider_id == "p"
