"""APNs transport against a local HTTP/2 stand-in that verifies the ES256 JWT."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notifications import ApnsTransport, Message, TransportError


class FakeClock:
    """Starts in the past: APNs (and PyJWT) refuse an ``iat`` in the future."""

    def __init__(self) -> None:
        self.now = time.time() - 60

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transport(apns_stand_in, apns_key_pem, clock) -> Iterator[ApnsTransport]:
    apns = ApnsTransport(
        apns_stand_in.team_id,
        apns_stand_in.key_id,
        apns_key_pem,
        apns_stand_in.topic,
        endpoint=apns_stand_in.url,
        timeout=5.0,
        clock=clock,
    )
    yield apns
    apns.close()


DEVICE = "a1b2c3d4" * 8


def push(to: str = DEVICE, **kwargs: object) -> Message:
    return Message(
        to=to,
        title="Questionnaire due",
        body="Your weekly questionnaire is ready.",
        **kwargs,  # type: ignore[arg-type]
    )


def failure(transport: ApnsTransport, to: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(push(to))
    return caught.value


def test_a_push_is_accepted_and_the_apns_id_is_the_provider_id(transport, apns_stand_in) -> None:
    delivery = str(uuid.uuid4())
    result = transport.send(
        push(
            link="followup://assignments/a-1",
            data={"assignment_id": "a-1"},
            collapse_key="assignment-a-1",
            idempotency_key=delivery,
        )
    )

    assert result.provider_id == delivery
    [request] = apns_stand_in.requests
    headers = request["headers"]
    assert headers[":method"] == "POST"
    assert headers[":path"] == f"/3/device/{DEVICE}"
    assert headers["apns-topic"] == apns_stand_in.topic
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == "assignment-a-1"
    assert headers["apns-id"] == delivery
    assert request["body"] == {
        "aps": {
            "alert": {
                "title": "Questionnaire due",
                "body": "Your weekly questionnaire is ready.",
            },
            "sound": "default",
        },
        "link": "followup://assignments/a-1",
        "assignment_id": "a-1",
    }


def test_without_an_apns_id_the_one_apns_assigns_is_returned(transport, apns_stand_in) -> None:
    result = transport.send(push())
    assert "apns-id" not in apns_stand_in.requests[0]["headers"]
    assert uuid.UUID(str(result.provider_id))


def test_a_non_uuid_idempotency_key_gives_a_stable_apns_id(transport) -> None:
    first = transport.send(push(idempotency_key="delivery-42"))
    second = transport.send(push(idempotency_key="delivery-42"))
    assert first.provider_id == second.provider_id
    assert uuid.UUID(str(first.provider_id))


def test_the_provider_jwt_is_es256_with_kid_and_iss(transport, apns_stand_in, apns_key):
    transport.send(push())
    token = apns_stand_in.provider_tokens[0].removeprefix("bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert jwt.get_unverified_header(token)["kid"] == apns_stand_in.key_id
    claims = jwt.decode(token, apns_key.public_key(), algorithms=["ES256"])
    assert claims["iss"] == apns_stand_in.team_id


def test_the_provider_jwt_is_reused_across_sends(transport, apns_stand_in) -> None:
    for _ in range(3):
        transport.send(push())
    assert len(set(apns_stand_in.provider_tokens)) == 1


def test_the_provider_jwt_is_renewed_after_fifty_minutes(transport, apns_stand_in, clock) -> None:
    clock.now = time.time() - 55 * 60
    transport.send(push())
    clock.now += 49 * 60
    transport.send(push())
    clock.now += 2 * 60
    transport.send(push())
    first, second, third = apns_stand_in.provider_tokens
    assert first == second != third


def test_an_unregistered_token_410_is_permanent(transport) -> None:
    error = failure(transport, "unregistered" + DEVICE)
    assert (error.permanent, error.code) == (True, "unregistered")
    assert "Unregistered" in str(error)


def test_a_bad_device_token_is_permanent(transport) -> None:
    error = failure(transport, "bad" + DEVICE)
    assert (error.permanent, error.code) == (True, "invalid_recipient")
    assert "BadDeviceToken" in str(error)


def test_too_many_requests_is_transient_with_retry_after(transport) -> None:
    error = failure(transport, "busy" + DEVICE)
    assert (error.permanent, error.code, error.retry_after) == (
        False,
        "rate_limited",
        7.0,
    )


def test_service_unavailable_is_transient_with_retry_after(transport) -> None:
    error = failure(transport, "down" + DEVICE)
    assert (error.permanent, error.code, error.retry_after) == (
        False,
        "unavailable",
        120.0,
    )


def test_a_rejected_provider_token_is_auth_and_the_cached_jwt_is_dropped(
    apns_stand_in, clock, closing
) -> None:
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    pem = wrong_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    apns = closing(
        ApnsTransport(
            apns_stand_in.team_id,
            apns_stand_in.key_id,
            pem,
            apns_stand_in.topic,
            endpoint=apns_stand_in.url,
            clock=clock,
        )
    )
    error = failure(apns, DEVICE)
    assert (error.permanent, error.code) == (False, "auth")
    assert "InvalidProviderToken" in str(error)

    clock.now += 1
    with pytest.raises(TransportError):
        apns.send(push())
    first, second = apns_stand_in.provider_tokens
    assert first != second


def test_a_wrong_topic_is_reported_by_apns_as_not_for_topic(
    apns_stand_in, apns_key_pem, closing
) -> None:
    apns = closing(
        ApnsTransport(
            apns_stand_in.team_id,
            apns_stand_in.key_id,
            apns_key_pem,
            "org.example.other",
            endpoint=apns_stand_in.url,
        )
    )
    error = failure(apns, DEVICE)
    assert (error.permanent, error.code) == (True, "invalid_recipient")


def test_an_unreachable_endpoint_is_transient(apns_key_pem, closing) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    apns = closing(
        ApnsTransport(
            "TEAM",
            "KEY",
            apns_key_pem,
            "org.example.app",
            endpoint=f"http://127.0.0.1:{port}",
        )
    )
    error = failure(apns, DEVICE)
    assert (error.permanent, error.code) == (False, "unavailable")


def test_a_long_collapse_key_is_hashed_to_fit_apns_limit(transport, apns_stand_in) -> None:
    transport.send(push(collapse_key="assignment-" + "x" * 100))
    collapse_id = apns_stand_in.requests[0]["headers"]["apns-collapse-id"]
    assert len(collapse_id.encode()) == 64


def test_a_key_that_is_not_p256_is_refused_at_construction() -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError):
        ApnsTransport("TEAM", "KEY", pem, "org.example.app")
