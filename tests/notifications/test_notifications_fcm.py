"""FCM HTTP v1 transport against a local OAuth2 + messages:send stand-in."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications import FcmTransport, Message, TransportError


@pytest.fixture
def transport(fcm_stand_in, service_account_info) -> Iterator[FcmTransport]:
    fcm = FcmTransport.from_service_account(
        service_account_info,
        endpoint=fcm_stand_in.http.url,
        token_uri=fcm_stand_in.token_uri,
        timeout=5.0,
    )
    yield fcm
    fcm.close()


def push(to: str = "device-token-1", **kwargs: object) -> Message:
    return Message(
        to=to,
        title="Questionnaire due",
        body="Your weekly questionnaire is ready.",
        **kwargs,  # type: ignore[arg-type]
    )


def failure(transport: FcmTransport, to: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.send(push(to))
    return caught.value


def test_a_push_is_accepted_and_the_message_name_is_the_provider_id(
    transport, fcm_stand_in
) -> None:
    result = transport.send(
        push(
            link="followup://assignments/a-1",
            data={"assignment_id": "a-1"},
            collapse_key="assignment-a-1",
        )
    )

    assert str(result.provider_id).startswith(f"projects/{fcm_stand_in.project_id}/messages/")
    assert fcm_stand_in.sent == [
        {
            "message": {
                "token": "device-token-1",
                "notification": {
                    "title": "Questionnaire due",
                    "body": "Your weekly questionnaire is ready.",
                },
                "data": {"assignment_id": "a-1", "link": "followup://assignments/a-1"},
                "android": {"collapse_key": "assignment-a-1"},
                "apns": {"headers": {"apns-collapse-id": "assignment-a-1"}},
            }
        }
    ]


def test_a_push_without_link_data_or_collapse_key_sends_only_the_notification(
    transport, fcm_stand_in
) -> None:
    transport.send(push())
    assert fcm_stand_in.sent[0]["message"] == {
        "token": "device-token-1",
        "notification": {
            "title": "Questionnaire due",
            "body": "Your weekly questionnaire is ready.",
        },
    }


def test_the_access_token_is_fetched_once_and_reused(transport, fcm_stand_in) -> None:
    transport.send(push())
    transport.send(push("device-token-2"))
    assert fcm_stand_in.token_requests == 1
    assert len(fcm_stand_in.sent) == 2


def test_an_unregistered_token_is_permanent(transport) -> None:
    error = failure(transport, "unregistered-token")
    assert (error.permanent, error.code) == (True, "unregistered")
    assert "UNREGISTERED" in str(error)


def test_an_invalid_registration_token_is_permanent(transport) -> None:
    error = failure(transport, "malformed-token")
    assert (error.permanent, error.code) == (True, "invalid_recipient")


def test_an_invalid_payload_is_our_problem_not_the_token(transport) -> None:
    error = failure(transport, "oversize-token")
    assert (error.permanent, error.code) == (False, "config")


def test_quota_exceeded_is_transient_and_honours_retry_after(transport) -> None:
    error = failure(transport, "quota-token")
    assert error.permanent is False
    assert error.code == "rate_limited"
    assert error.retry_after == 30.0


def test_unavailable_is_transient(transport) -> None:
    error = failure(transport, "down-token")
    assert (error.permanent, error.code) == (False, "unavailable")


def test_a_rejected_access_token_is_auth_and_a_new_one_is_fetched_next_time(
    transport, fcm_stand_in
) -> None:
    transport.send(push())
    fcm_stand_in.issued.clear()  # e.g. the token was revoked

    error = failure(transport, "device-token-1")
    assert (error.permanent, error.code) == (False, "auth")

    transport.send(push())
    assert fcm_stand_in.token_requests == 2


def test_a_service_account_key_the_token_endpoint_rejects_is_auth(
    fcm_stand_in, service_account_info, closing
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = dict(service_account_info)
    info["private_key"] = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fcm = closing(
        FcmTransport.from_service_account(
            info, endpoint=fcm_stand_in.http.url, token_uri=fcm_stand_in.token_uri
        )
    )
    with pytest.raises(TransportError) as caught:
        fcm.send(push())
    assert (caught.value.permanent, caught.value.code) == (False, "auth")
    assert fcm_stand_in.sent == []


def test_an_unreachable_fcm_endpoint_is_transient(
    fcm_stand_in, service_account_info, closing
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fcm = closing(
        FcmTransport.from_service_account(
            service_account_info,
            endpoint=f"http://127.0.0.1:{port}",
            token_uri=fcm_stand_in.token_uri,
            timeout=2.0,
        )
    )
    with pytest.raises(TransportError) as caught:
        fcm.send(push())
    assert (caught.value.permanent, caught.value.code) == (False, "unavailable")


def test_a_404_from_a_wrong_endpoint_is_config_not_a_dead_token(
    fcm_stand_in, service_account_info, closing
) -> None:
    fcm = closing(
        FcmTransport.from_service_account(
            service_account_info,
            endpoint=f"{fcm_stand_in.http.url}/wrong-prefix",
            token_uri=fcm_stand_in.token_uri,
        )
    )
    with pytest.raises(TransportError) as caught:
        fcm.send(push())
    assert (caught.value.permanent, caught.value.code) == (False, "config")


def test_the_project_id_comes_from_the_service_account_unless_given(
    service_account_info, closing
) -> None:
    default = closing(FcmTransport.from_service_account(service_account_info))
    other = closing(FcmTransport.from_service_account(service_account_info, "other-project"))
    assert default.url.endswith("/v1/projects/demo-followup/messages:send")
    assert other.url.endswith("/v1/projects/other-project/messages:send")
