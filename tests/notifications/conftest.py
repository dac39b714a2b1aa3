"""Local stand-ins for the providers, on 127.0.0.1 with random ports.

Each stand-in checks what the real provider would check (credentials, path,
form or JSON fields) and answers with the status codes and error bodies the
provider documents, so the transports are exercised over real sockets:

* SMTP: aiosmtpd, optionally with STARTTLS (self-signed certificate made here)
  and AUTH required.
* FCM: one ``ThreadingHTTPServer`` serving the OAuth2 token endpoint
  (JWT-bearer grant, RFC 7523) and ``v1/projects/{id}/messages:send``.
* APNs: a threaded HTTP/2 server built on ``h2`` (APNs is HTTP/2 only) that
  verifies the ES256 provider JWT.
* Twilio: a ``ThreadingHTTPServer`` for ``Messages.json`` with Basic auth.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import jwt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    status: int
    body: Any = None  # dict -> JSON, bytes -> raw, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Request], Reply]


class HttpStandIn:
    """A ThreadingHTTPServer in a thread; every request goes to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[Request] = []
        stand_in = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                stand_in.requests.append(request)
                reply = handler(request)
                if isinstance(reply.body, dict):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                else:
                    payload = reply.body or b""
                    content_type = "text/plain"
                self.send_response(reply.status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> Reply:
    """A Google API error body, as FCM HTTP v1 returns it."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return Reply(code, {"error": error})


def fcm_error_detail(error_code: str) -> dict[str, str]:
    return {
        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
        "errorCode": error_code,
    }


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register a transport (anything with ``close()``) to be closed after the test."""
    opened: list[Any] = []

    def register(obj: Any) -> Any:
        opened.append(obj)
        return obj

    yield register
    for obj in opened:
        obj.close()


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsMaterial:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A self-signed certificate for 127.0.0.1 and contexts to serve / trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return TlsMaterial(server_context=server, client_context=client)


# --------------------------------------------------------------------------- SMTP

SMTP_USER = "mailer"
SMTP_PASSWORD = "correct horse battery staple"


class RecordingSmtpHandler:
    """Accepts mail, except for scripted recipients.

    ``busy@...`` gets ``451`` (try later), ``nobody@...`` gets ``550 5.1.1``
    (no such user), ``full@...`` gets ``552 5.2.2`` (mailbox full),
    ``relay@...`` gets ``550 5.7.1`` (relay access denied).
    """

    RCPT_REPLIES = {
        "busy": "451 4.3.0 Temporary local problem - please try later",
        "nobody": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
        "full": "552 5.2.2 <{address}>: Mailbox full",
        "relay": "554 5.7.1 <{address}>: Relay access denied",
    }

    def __init__(self, *, pipelining: bool = True) -> None:
        self.messages: list[dict[str, Any]] = []
        # Relays announce PIPELINING (RFC 2920; aiosmtpd does not, but reads pipelined commands
        # in order): the client then sends MAIL, RCPT and DATA in one write.
        self.pipelining = pipelining

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        local = address.partition("@")[0]
        if local in self.RCPT_REPLIES:
            return self.RCPT_REPLIES[local].format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
            }
        )
        return "250 2.0.0 Message accepted for delivery"


@dataclass
class SmtpStandIn:
    host: str
    port: int
    handler: RecordingSmtpHandler
    user: str = SMTP_USER
    password: str = SMTP_PASSWORD


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    # handled=False: let aiosmtpd answer 535 itself on failure.
    return AuthResult(success=ok, handled=False)


def _start_smtp(handler: RecordingSmtpHandler, **kwargs: Any) -> Controller:
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5.0, **kwargs
    )
    controller.start()
    return controller


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpStandIn]:
    """A relay, once announcing PIPELINING (as relays do) and once not."""
    handler = RecordingSmtpHandler(pipelining=request.param)
    controller = _start_smtp(handler)
    try:
        yield SmtpStandIn(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_ascii_server() -> Iterator[SmtpStandIn]:
    """A relay without SMTPUTF8 (RFC 6531; aiosmtpd's Controller announces it by default)."""
    handler = RecordingSmtpHandler()
    controller = _start_smtp(handler, enable_SMTPUTF8=False)
    try:
        yield SmtpStandIn(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_tls_server(tls_material: TlsMaterial) -> Iterator[SmtpStandIn]:
    """STARTTLS required, AUTH (PLAIN/LOGIN) required and only after TLS."""
    handler = RecordingSmtpHandler()
    controller = _start_smtp(
        handler,
        tls_context=tls_material.server_context,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    try:
        yield SmtpStandIn(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


# --------------------------------------------------------------------------- FCM

FCM_PROJECT = "demo-followup"


@pytest.fixture(scope="session")
def service_account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def service_account_info(service_account_key: rsa.RSAPrivateKey) -> dict[str, str]:
    pem = service_account_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": FCM_PROJECT,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": f"fcm-sender@{FCM_PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        # Never contacted: the tests override it with the stand-in's URL.
        "token_uri": "https://oauth2.googleapis.com/token",
    }


class FcmStandIn:
    """OAuth2 token endpoint + FCM v1 ``messages:send``.

    The answer depends on the device token: ``unregistered-*`` -> 404
    UNREGISTERED, ``malformed-*`` -> 400 INVALID_ARGUMENT (token), ``oversize-*``
    -> 400 INVALID_ARGUMENT (payload, not the token), ``quota-*``
    -> 429 QUOTA_EXCEEDED with Retry-After: 30, ``down-*`` -> 503 UNAVAILABLE,
    anything else -> 200 with a message name.
    """

    project_id = FCM_PROJECT

    def __init__(self, info: dict[str, str], public_key: rsa.RSAPublicKey) -> None:
        self.info = info
        self.public_key = public_key
        self.token_requests = 0
        self.issued: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.http = HttpStandIn(self.handle)
        self.token_uri = f"{self.http.url}/token"

    def handle(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.handle_token(request)
        if request.path == f"/v1/projects/{FCM_PROJECT}/messages:send":
            return self.handle_send(request)
        # Google front ends answer unknown paths with an HTML page.
        return Reply(404, b"<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>")

    def handle_token(self, request: Request) -> Reply:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                # google-auth always uses Google's token endpoint as audience.
                audience="https://oauth2.googleapis.com/token",
                issuer=self.info["client_email"],
            )
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
        if "firebase.messaging" not in claims.get("scope", ""):
            return Reply(400, {"error": "invalid_scope"})
        token = f"ya29.test-{uuid.uuid4().hex}"
        self.issued.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def handle_send(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.issued:
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )
        body = json.loads(request.body)
        self.sent.append(body)
        token = body["message"]["token"]
        if token.startswith("unregistered-"):
            return google_error(
                404,
                "NOT_FOUND",
                "Requested entity was not found.",
                fcm_error_detail("UNREGISTERED"),
            )
        if token.startswith("malformed-"):
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                fcm_error_detail("INVALID_ARGUMENT"),
            )
        if token.startswith("oversize-"):
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "Message is too big",
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "message.data", "description": "Message is too big"}
                    ],
                },
            )
        if token.startswith("quota-"):
            reply = google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Send messages'.",
                fcm_error_detail("QUOTA_EXCEEDED"),
            )
            reply.headers["Retry-After"] = "30"
            return reply
        if token.startswith("down-"):
            return google_error(
                503,
                "UNAVAILABLE",
                "The service is currently unavailable.",
                fcm_error_detail("UNAVAILABLE"),
            )
        return Reply(200, {"name": f"projects/{FCM_PROJECT}/messages/0:{time.time_ns()}"})


@pytest.fixture
def fcm_stand_in(
    service_account_info: dict[str, str], service_account_key: rsa.RSAPrivateKey
) -> Iterator[FcmStandIn]:
    stand_in = FcmStandIn(service_account_info, service_account_key.public_key())
    try:
        yield stand_in
    finally:
        stand_in.http.close()


# --------------------------------------------------------------------------- APNs

APNS_TEAM = "TEAM123456"
APNS_KEY_ID = "KEY7890ABC"
APNS_TOPIC = "org.example.followup"


@pytest.fixture(scope="session")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def apns_key_pem(apns_key: ec.EllipticCurvePrivateKey) -> str:
    return apns_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class ApnsStandIn:
    """An HTTP/2-only server answering like ``api.push.apple.com``.

    Device tokens select the answer: ``unregistered...`` -> 410 Unregistered,
    ``bad...`` -> 400 BadDeviceToken, ``busy...`` -> 429 TooManyRequests
    (Retry-After: 7), ``down...`` -> 503 ServiceUnavailable (Retry-After: 120),
    anything else -> 200 with ``apns-id``.
    """

    team_id = APNS_TEAM
    key_id = APNS_KEY_ID
    topic = APNS_TOPIC

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key
        self.requests: list[dict[str, Any]] = []
        self.provider_tokens: list[str] = []
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes up accept()
        self._listener.close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        h2conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        h2conn.initiate_connection()
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            conn.sendall(h2conn.data_to_send())
            while True:
                data = conn.recv(65535)
                if not data:
                    return
                for event in h2conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {str(k): str(v) for k, v in event.headers or []}
                        streams[event.stream_id] = (headers, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data or b"")
                        h2conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        status, reply_headers, reply_body = self.respond(headers, body)
                        h2conn.send_headers(
                            event.stream_id,
                            [(":status", str(status)), *reply_headers],
                            end_stream=not reply_body,
                        )
                        if reply_body:
                            h2conn.send_data(event.stream_id, reply_body, end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        conn.sendall(h2conn.data_to_send())
                        return
                conn.sendall(h2conn.data_to_send())
        except OSError:
            return
        finally:
            conn.close()

    def _check_provider_token(self, authorization: str) -> str | None:
        """None when valid, else the APNs 403 reason."""
        if not authorization.startswith("bearer "):
            return "MissingProviderToken"
        token = authorization[len("bearer ") :]
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("kid") != APNS_KEY_ID or claims.get("iss") != APNS_TEAM:
            return "InvalidProviderToken"
        if time.time() - claims["iat"] > 3600:
            return "ExpiredProviderToken"
        return None

    def respond(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        def reason(status: int, why: str, **extra: Any) -> tuple[int, list[Any], bytes]:
            payload = json.dumps({"reason": why, **extra}).encode()
            extra_headers = [("content-type", "application/json")]
            if status in (429, 503):
                extra_headers.append(("retry-after", "7" if status == 429 else "120"))
            return status, [("apns-id", apns_id), *extra_headers], payload

        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        with self._lock:
            self.requests.append({"headers": headers, "body": json.loads(body or b"{}")})
            self.provider_tokens.append(headers.get("authorization", ""))
        if headers.get(":method") != "POST":
            return reason(405, "MethodNotAllowed")
        path = headers.get(":path", "")
        if not path.startswith("/3/device/"):
            return reason(404, "BadPath")
        device_token = path[len("/3/device/") :]
        problem = self._check_provider_token(headers.get("authorization", ""))
        if problem:
            return reason(403, problem)
        if headers.get("apns-topic") != APNS_TOPIC:
            return reason(400, "DeviceTokenNotForTopic")
        if device_token.startswith("unregistered"):
            return reason(410, "Unregistered", timestamp=int(time.time() * 1000))
        if device_token.startswith("bad"):
            return reason(400, "BadDeviceToken")
        if device_token.startswith("busy"):
            return reason(429, "TooManyRequests")
        if device_token.startswith("down"):
            return reason(503, "ServiceUnavailable")
        return 200, [("apns-id", apns_id)], b""


@pytest.fixture
def apns_stand_in(apns_key: ec.EllipticCurvePrivateKey) -> Iterator[ApnsStandIn]:
    stand_in = ApnsStandIn(apns_key.public_key())
    try:
        yield stand_in
    finally:
        stand_in.close()


# --------------------------------------------------------------------------- Twilio

TWILIO_SID = "AC" + "a1b2c3d4" * 4
TWILIO_TOKEN = "twilio-auth-token"
TWILIO_FROM = "+15005550006"


def twilio_error(status: int, code: int, message: str) -> Reply:
    return Reply(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class TwilioStandIn:
    """``POST /2010-04-01/Accounts/{sid}/Messages.json``.

    Uses Twilio's documented magic test numbers where they exist:
    ``+15005550001`` invalid (21211), ``+15005550009`` not SMS-capable (21614),
    ``+15005550004`` blocked/unsubscribed (21610); plus ``+15005550429`` -> 429
    with Retry-After and ``+15005550500`` -> 500.
    """

    sid = TWILIO_SID
    auth_token = TWILIO_TOKEN
    from_number = TWILIO_FROM

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.http = HttpStandIn(self.handle)

    def handle(self, request: Request) -> Reply:
        if request.path != f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
            return twilio_error(404, 20404, "The requested resource was not found")
        expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return twilio_error(401, 20003, "Authenticate")
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return twilio_error(400, 20001, "Unsupported content type")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        self.forms.append(form)
        to = form.get("To", "")
        if not form.get("Body"):
            return twilio_error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if to == "+15005550001":
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if to == "+15005550009":
            return twilio_error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if to == "+15005550004":
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        if to == "+15005550429":
            reply = twilio_error(
                429,
                20429,
                "Too many requests. Please retry according to the Retry-After response header.",
            )
            reply.headers["Retry-After"] = "5"
            return reply
        if to == "+15005550500":
            return twilio_error(500, 20500, "Internal Server Error")
        sid = "SM" + uuid.uuid4().hex
        return Reply(
            201,
            {
                "sid": sid,
                "account_sid": TWILIO_SID,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
            },
        )


@pytest.fixture
def twilio_stand_in() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()
    try:
        yield stand_in
    finally:
        stand_in.http.close()
