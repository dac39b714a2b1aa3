"""Twilio SMS transport against a local Messages.json stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifications import Message, TransportError, TwilioSmsTransport


@pytest.fixture
def transport(twilio_stand_in) -> Iterator[TwilioSmsTransport]:
    sms = TwilioSmsTransport(
        twilio_stand_in.sid,
        twilio_stand_in.auth_token,
        twilio_stand_in.from_number,
        endpoint=twilio_stand_in.http.url,
        timeout=5.0,
    )
    yield sms
    sms.close()


def text(to: str = "+33612345678", link: str | None = None) -> Message:
    return Message(
        to=to,
        title="Questionnaire due",
        body="Your weekly questionnaire is ready.",
        link=link,
    )


def failure(transport: TwilioSmsTransport, to: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(text(to))
    return caught.value


def test_an_sms_is_created_and_the_message_sid_is_the_provider_id(
    transport, twilio_stand_in
) -> None:
    result = transport.send(text(link="https://app.clinic.example/a/1"))

    assert str(result.provider_id).startswith("SM")
    assert twilio_stand_in.forms == [
        {
            "To": "+33612345678",
            "From": twilio_stand_in.from_number,
            "Body": "Your weekly questionnaire is ready.\nhttps://app.clinic.example/a/1",
        }
    ]


def test_a_messaging_service_can_replace_the_from_number(twilio_stand_in, closing) -> None:
    sms = closing(
        TwilioSmsTransport(
            twilio_stand_in.sid,
            twilio_stand_in.auth_token,
            messaging_service_sid="MG" + "0" * 32,
            endpoint=twilio_stand_in.http.url,
        )
    )
    sms.send(text())
    [form] = twilio_stand_in.forms
    assert form["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in form


def test_exactly_one_sender_must_be_configured() -> None:
    with pytest.raises(ValueError):
        TwilioSmsTransport("AC1", "secret")
    with pytest.raises(ValueError):
        TwilioSmsTransport("AC1", "secret", "+15005550006", messaging_service_sid="MG1")


def test_an_invalid_number_21211_is_permanent_and_not_echoed(transport) -> None:
    error = failure(transport, "+15005550001")
    assert (error.permanent, error.code) == (True, "invalid_recipient")
    assert "21211" in str(error)
    assert "5550001" not in str(error)


def test_a_number_that_is_not_mobile_21614_is_permanent(transport) -> None:
    error = failure(transport, "+15005550009")
    assert (error.permanent, error.code) == (True, "invalid_recipient")


def test_an_opted_out_recipient_21610_is_permanent(transport) -> None:
    error = failure(transport, "+15005550004")
    assert (error.permanent, error.code) == (True, "opted_out")


def test_rate_limiting_is_transient_with_retry_after(transport) -> None:
    error = failure(transport, "+15005550429")
    assert (error.permanent, error.code, error.retry_after) == (
        False,
        "rate_limited",
        5.0,
    )


def test_a_server_error_is_transient(transport) -> None:
    error = failure(transport, "+15005550500")
    assert (error.permanent, error.code) == (False, "unavailable")


def test_a_wrong_auth_token_is_auth_not_the_number(twilio_stand_in, closing) -> None:
    sms = closing(
        TwilioSmsTransport(
            twilio_stand_in.sid,
            "wrong",
            twilio_stand_in.from_number,
            endpoint=twilio_stand_in.http.url,
        )
    )
    error = failure(sms, "+33612345678")
    assert (error.permanent, error.code) == (False, "auth")
