"""SMTP transport against a real in-process SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from notifications import Message, SmtpTransport, TransportError
from tests.notifications.conftest import RecordingSmtpHandler

FROM = "Clinic follow-up <noreply@clinic.example>"


def reminder(to: str = "patient@example.org", **kwargs: str) -> Message:
    return Message(
        to=to,
        title="Your follow-up questionnaire",
        body="Please answer today's questionnaire.",
        link="https://app.clinic.example/a/123",
        **kwargs,
    )


def plain_transport(server: object, **kwargs: object) -> SmtpTransport:
    return SmtpTransport(
        server.host,  # type: ignore[attr-defined]
        server.port,  # type: ignore[attr-defined]
        from_addr=FROM,
        starttls=False,
        timeout=5.0,
        **kwargs,  # type: ignore[arg-type]
    )


def received(server: object) -> EmailMessage:
    content = server.handler.messages[-1]["content"]  # type: ignore[attr-defined]
    parsed = message_from_bytes(content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_reminder_is_delivered_with_headers_body_and_link(smtp_server) -> None:
    result = plain_transport(smtp_server).send(reminder(idempotency_key="delivery-42"))

    assert result.provider_id == "<delivery-42@clinic.example>"
    [envelope] = smtp_server.handler.messages
    assert envelope["rcpt_tos"] == ["patient@example.org"]
    assert envelope["mail_from"] == "noreply@clinic.example"
    mail = received(smtp_server)
    assert mail["Subject"] == "Your follow-up questionnaire"
    assert mail["From"] == FROM
    assert mail["To"] == "patient@example.org"
    assert mail["Message-ID"] == "<delivery-42@clinic.example>"
    assert mail["X-Delivery-Id"] == "delivery-42"
    assert parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert mail.get_content_type() == "text/plain"
    lines = mail.get_content().splitlines()
    assert lines[0] == "Please answer today's questionnaire."
    assert "https://app.clinic.example/a/123" in lines


def test_a_french_subject_sender_and_body_arrive_intact(smtp_server) -> None:
    transport = SmtpTransport(
        smtp_server.host,
        smtp_server.port,
        from_addr="Suivi Hôpital Nord <suivi@chu.example>",
        starttls=False,
        timeout=5.0,
    )
    transport.send(
        Message(
            to="patient@example.org",
            title="Votre questionnaire de suivi : à remplir aujourd'hui",
            body="Bonjour, répondez à votre questionnaire.",
            link="https://app.clinic.example/a/é",
        )
    )
    [envelope] = smtp_server.handler.messages
    assert envelope["mail_from"] == "suivi@chu.example"
    assert envelope["content"].isascii()  # RFC 2047 headers, quoted-printable body: no 8BITMIME
    mail = received(smtp_server)
    assert mail["Subject"] == "Votre questionnaire de suivi : à remplir aujourd'hui"
    assert mail["From"] == "Suivi Hôpital Nord <suivi@chu.example>"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().splitlines()[0] == "Bonjour, répondez à votre questionnaire."


def test_an_address_outside_ascii_is_sent_with_smtputf8(smtp_server) -> None:
    plain_transport(smtp_server).send(reminder(to="josé@exemple.fr"))
    [envelope] = smtp_server.handler.messages
    assert envelope["rcpt_tos"] == ["josé@exemple.fr"]
    assert received(smtp_server)["To"] == "josé@exemple.fr"


def test_an_address_outside_ascii_without_smtputf8_is_a_config_error_not_a_crash(
    smtp_ascii_server,
) -> None:
    with pytest.raises(TransportError) as refused:
        plain_transport(smtp_ascii_server).send(reminder(to="josé@exemple.fr"))
    assert refused.value.code == "config" and not refused.value.permanent
    assert smtp_ascii_server.handler.messages == []


def test_retries_of_one_delivery_reuse_the_same_message_id(smtp_server) -> None:
    transport = plain_transport(smtp_server)
    first = transport.send(reminder(idempotency_key="a b<c>"))
    second = transport.send(reminder(idempotency_key="a b<c>"))
    assert first.provider_id == second.provider_id == "<a-b-c-@clinic.example>"


def test_without_an_idempotency_key_a_unique_message_id_is_generated(
    smtp_server,
) -> None:
    transport = plain_transport(smtp_server)
    first = transport.send(reminder())
    second = transport.send(reminder())
    assert first.provider_id != second.provider_id
    assert str(first.provider_id).endswith("@clinic.example>")
    assert received(smtp_server)["Message-ID"] == second.provider_id


def test_starttls_and_auth_are_used_when_configured(smtp_tls_server, tls_material) -> None:
    transport = SmtpTransport(
        smtp_tls_server.host,
        smtp_tls_server.port,
        from_addr=FROM,
        username=smtp_tls_server.user,
        password=smtp_tls_server.password,
        starttls=True,
        ssl_context=tls_material.client_context,
        timeout=5.0,
    )
    transport.send(reminder())
    [envelope] = smtp_tls_server.handler.messages
    assert envelope["tls"] is True
    assert envelope["authenticated"] is True


def test_an_untrusted_server_certificate_is_refused_by_default(smtp_tls_server) -> None:
    transport = SmtpTransport(
        smtp_tls_server.host,
        smtp_tls_server.port,
        from_addr=FROM,
        username=smtp_tls_server.user,
        password=smtp_tls_server.password,
        timeout=5.0,
    )
    with pytest.raises(TransportError) as caught:
        transport.send(reminder())
    assert caught.value.permanent is False
    assert caught.value.code == "config"
    assert smtp_tls_server.handler.messages == []


def test_a_wrong_password_is_transient_with_code_auth(smtp_tls_server, tls_material) -> None:
    transport = SmtpTransport(
        smtp_tls_server.host,
        smtp_tls_server.port,
        from_addr=FROM,
        username=smtp_tls_server.user,
        password="wrong",
        ssl_context=tls_material.client_context,
        timeout=5.0,
    )
    with pytest.raises(TransportError) as caught:
        transport.send(reminder())
    assert caught.value.permanent is False
    assert caught.value.code == "auth"
    assert "535" in str(caught.value)


def test_auth_against_a_tls_only_relay_without_starttls_is_a_config_error(
    smtp_tls_server,
) -> None:
    transport = SmtpTransport(
        smtp_tls_server.host,
        smtp_tls_server.port,
        from_addr=FROM,
        username=smtp_tls_server.user,
        password=smtp_tls_server.password,
        starttls=False,
        timeout=5.0,
    )
    with pytest.raises(TransportError) as caught:
        transport.send(reminder())
    assert (caught.value.permanent, caught.value.code) == (False, "config")


def test_a_451_on_rcpt_is_transient(smtp_server) -> None:
    with pytest.raises(TransportError) as caught:
        plain_transport(smtp_server).send(reminder("busy@example.org"))
    assert caught.value.permanent is False
    assert caught.value.code == "unavailable"
    assert "451" in str(caught.value)


def test_a_550_on_rcpt_is_permanent_and_does_not_echo_the_address(
    smtp_server,
) -> None:
    with pytest.raises(TransportError) as caught:
        plain_transport(smtp_server).send(reminder("nobody@example.org"))
    assert caught.value.permanent is True
    assert caught.value.code == "invalid_recipient"
    assert "550" in str(caught.value)
    assert "nobody" not in str(caught.value)
    assert smtp_server.handler.messages == []


def test_a_full_mailbox_552_is_treated_as_temporary(smtp_server) -> None:
    with pytest.raises(TransportError) as caught:
        plain_transport(smtp_server).send(reminder("full@example.org"))
    assert (caught.value.permanent, caught.value.code) == (False, "rejected")


def test_a_relay_policy_refusal_5_7_1_does_not_disable_the_address(
    smtp_server,
) -> None:
    with pytest.raises(TransportError) as caught:
        plain_transport(smtp_server).send(reminder("relay@example.org"))
    assert (caught.value.permanent, caught.value.code) == (False, "config")


def test_a_server_that_is_not_listening_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, from_addr=FROM, timeout=2.0)
    with pytest.raises(TransportError) as caught:
        transport.send(reminder())
    assert (caught.value.permanent, caught.value.code) == (False, "unavailable")


def test_a_server_that_never_greets_times_out_as_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        transport = SmtpTransport("127.0.0.1", port, from_addr=FROM, timeout=0.2)
        with pytest.raises(TransportError) as caught:
            transport.send(reminder())
    assert (caught.value.permanent, caught.value.code) == (False, "unavailable")


# --- a batch over one connection (SmtpTransport.session) ------------------------------------


class ConnectionsSeen(RecordingSmtpHandler):
    """Records which connection carried each message; can drop one connection mid-batch."""

    def __init__(self, drop_at: int | None = None) -> None:
        super().__init__()
        self.connection_of: list[int] = []
        self.drop_at = drop_at  # the DATA of this message (1-based) loses its connection
        self.datas = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.datas += 1
        if self.datas == self.drop_at:
            server.transport.abort()  # the connection dies before the message is accepted
            return "421 4.3.0 gone"
        self.connection_of.append(id(session))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def counting_server(request):
    from tests.notifications.conftest import SmtpStandIn, _start_smtp

    servers = []

    def start(drop_at: int | None = None) -> SmtpStandIn:
        handler = ConnectionsSeen(drop_at)
        handler.pipelining = request.param
        controller = _start_smtp(handler)
        servers.append(controller)
        return SmtpStandIn(controller.hostname, controller.port, handler)

    yield start
    for controller in servers:
        controller.stop()


def batch(n: int) -> list[Message]:
    return [reminder(f"patient{i}@example.org", idempotency_key=f"d-{i}") for i in range(n)]


def recipients_of(server) -> list[str]:
    return [m["rcpt_tos"][0] for m in server.handler.messages]


def test_a_batch_is_sent_over_one_connection(counting_server) -> None:
    server = counting_server()
    with plain_transport(server).session() as session:
        results = [session.send(m) for m in batch(20)]

    assert recipients_of(server) == [f"patient{i}@example.org" for i in range(20)]
    assert len(set(server.handler.connection_of)) == 1
    assert session.connections == 1
    assert [r.provider_id for r in results] == [f"<d-{i}@clinic.example>" for i in range(20)]


def test_a_refused_recipient_mid_batch_fails_alone_and_keeps_the_connection(
    counting_server,
) -> None:
    server = counting_server()
    messages = batch(4)
    messages[1] = reminder("nobody@example.org", idempotency_key="d-x")
    errors = []
    with plain_transport(server).session() as session:
        for message in messages:
            try:
                session.send(message)
            except TransportError as exc:
                errors.append(exc.code)

    assert errors == ["invalid_recipient"]
    assert recipients_of(server) == [m.to for m in messages if m.to != "nobody@example.org"]
    assert len(set(server.handler.connection_of)) == 1


def test_a_connection_dropped_mid_batch_fails_that_message_only_and_nothing_is_sent_twice(
    counting_server,
) -> None:
    server = counting_server(drop_at=3)
    messages = batch(6)
    failed = []
    with plain_transport(server).session() as session:
        for message in messages:
            try:
                session.send(message)
            except TransportError as exc:
                assert (exc.permanent, exc.code) == (False, "unavailable")
                failed.append(message)
    assert [m.to for m in failed] == ["patient2@example.org"]
    # The rest went on over a new connection; the failed one is retried (the next batch).
    assert session.connections == 2
    with plain_transport(server).session() as retry:
        for message in failed:
            retry.send(message)

    assert sorted(recipients_of(server)) == sorted(m.to for m in messages)  # each exactly once
    assert len(set(server.handler.connection_of)) == 3


def test_a_transport_without_sessions_sends_a_batch_one_by_one() -> None:
    from notifications import MemoryTransport, open_session

    memory = MemoryTransport("sms")
    session = open_session(memory)
    for message in batch(3):
        session.send(message)
    session.close()

    assert [m.to for m in memory.sent] == [f"patient{i}@example.org" for i in range(3)]


def test_an_address_with_a_line_break_is_refused_before_any_header_is_written(
    smtp_server,
) -> None:
    transport = plain_transport(smtp_server)
    with pytest.raises(TransportError) as refused:
        transport.build(reminder(to="patient@example.org\r\nBcc: everyone@example.org"))
    assert refused.value.permanent
    assert refused.value.code == "invalid_recipient"
    assert "everyone" not in str(refused.value)


def test_a_long_french_body_is_folded_quoted_printable_and_reads_back_intact(smtp_server) -> None:
    body = ("Bonjour, répondez à votre questionnaire de suivi dès que possible. " * 6).strip()
    transport = plain_transport(smtp_server)
    rendered = transport.build(
        Message(
            to="patient@example.org",
            title="Votre questionnaire",
            body=body,
            link="https://app.clinic.example/a/xyz",
        )
    )
    assert rendered.data.isascii()
    assert all(len(line) <= 78 for line in rendered.data.split(b"\r\n"))
    assert b"\n" not in rendered.data.replace(b"\r\n", b"")
    mail = message_from_bytes(rendered.data, policy=policy.default)
    assert mail["Content-Transfer-Encoding"] == "quoted-printable"
    assert mail.get_content().splitlines() == [body, "", "https://app.clinic.example/a/xyz"]


# --- PIPELINING (RFC 2920) ---------------------------------------------------------------------


def writes_per_message(monkeypatch, server, n: int) -> float:
    """Writes to the socket per message over a batch of ``n``, connection set-up left out."""
    import smtplib

    writes = []
    original = smtplib.SMTP.send

    def counted(self, data):
        writes.append(data)
        return original(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", counted)
    with plain_transport(server).session() as session:
        session.send(reminder("first@example.org", idempotency_key="d-first"))
        before = len(writes)
        for message in batch(n):
            session.send(message)
        after = len(writes)
    return (after - before) / n


def test_a_relay_announcing_pipelining_gets_each_message_in_two_writes_instead_of_four(
    counting_server, monkeypatch
) -> None:
    server = counting_server()
    pipelined = server.handler.pipelining
    assert writes_per_message(monkeypatch, server, 10) == (2 if pipelined else 4)
    assert recipients_of(server) == ["first@example.org"] + [m.to for m in batch(10)]


class RefusingData(RecordingSmtpHandler):
    """Refuses the message of one recipient at DATA (554), accepts the others."""

    async def handle_DATA(self, server, session, envelope) -> str:
        if envelope.rcpt_tos == ["spam@example.org"]:
            return "554 5.6.0 Message refused"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_a_message_refused_at_data_fails_alone_and_the_next_one_goes_on_the_same_connection(
    pipelining,
) -> None:
    from tests.notifications.conftest import SmtpStandIn, _start_smtp

    handler = RefusingData(pipelining=pipelining)
    controller = _start_smtp(handler)
    try:
        server = SmtpStandIn(controller.hostname, controller.port, handler)
        errors = []
        with plain_transport(server).session() as session:
            for to in ("a@example.org", "spam@example.org", "b@example.org"):
                try:
                    session.send(reminder(to))
                except TransportError as exc:
                    errors.append((to, exc.permanent, exc.code))
        assert errors == [("spam@example.org", False, "rejected")]
        assert [m["rcpt_tos"] for m in handler.messages] == [["a@example.org"], ["b@example.org"]]
        assert session.connections == 1
    finally:
        controller.stop()


def scripted_relay(replies: dict[str, bytes], seen: list[bytes]) -> tuple[int, threading.Thread]:
    """A relay over a raw socket that announces PIPELINING and answers each command (its first
    word) from ``replies``, and the end of a message with ``replies['.']``: for the replies
    aiosmtpd never gives (DATA taken after a refused recipient, 421 mid-transaction)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener, conn.makefile("rb") as lines:
            conn.sendall(b"220 scripted ESMTP\r\n")
            in_data = False
            for line in lines:
                seen.append(line)
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        conn.sendall(replies["."])
                    continue
                verb = line.split()[0].upper().decode() if line.strip() else ""
                if verb == "EHLO":
                    conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    reply = replies.get(verb, b"250 OK\r\n")
                    conn.sendall(reply)
                    if verb == "DATA" and reply.startswith(b"354"):
                        in_data = True
                    if reply.startswith(b"421"):
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_data_taken_after_a_refused_recipient_gets_an_empty_message_and_a_reset() -> None:
    seen: list[bytes] = []
    port, thread = scripted_relay(
        {
            "RCPT": b"550 5.1.1 no such user\r\n",
            "DATA": b"354 go ahead\r\n",
            ".": b"554 no valid recipients\r\n",
        },
        seen,
    )
    transport = SmtpTransport("127.0.0.1", port, from_addr=FROM, starttls=False, timeout=5.0)
    with pytest.raises(TransportError) as caught:
        transport.send(reminder())
    thread.join(timeout=5)
    assert (caught.value.permanent, caught.value.code) == (True, "invalid_recipient")
    # No message text was sent: the empty message, then the reset and the goodbye.
    assert [line.upper() for line in seen[-3:]] == [b".\r\n", b"RSET\r\n", b"QUIT\r\n"]
    assert not any(b"Subject:" in line for line in seen)


def test_a_421_to_rcpt_closes_the_connection_and_the_next_message_reconnects() -> None:
    seen: list[bytes] = []
    port, thread = scripted_relay({"RCPT": b"421 4.3.2 shutting down\r\n"}, seen)
    transport = SmtpTransport("127.0.0.1", port, from_addr=FROM, starttls=False, timeout=5.0)
    session = transport.session()
    with pytest.raises(TransportError) as caught:
        session.send(reminder())
    thread.join(timeout=5)
    assert (caught.value.permanent, caught.value.code) == (False, "unavailable")
    assert session._smtp is None  # forgotten: the next send opens a new connection
    session.close()
