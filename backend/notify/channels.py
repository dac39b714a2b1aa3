"""Transports per route, built once per process from the configuration.

A route is a channel, and for push the phone's platform: ``push:android`` (FCM HTTP v1),
``push:ios`` (APNs), ``sms`` (Twilio), ``email`` (SMTP). A route whose provider is not
configured prints to the console in development and testing, and has no transport in
production: a delivery there fails over to the patient's next channel, and the attempt records
``channel_not_configured``. iOS tokens are APNs tokens (the app registers with APNs directly),
so they are never sent to FCM: a wrong-kind token would come back "invalid" and be disabled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from backend.config import ConfigError
from notifications import (
    ApnsTransport,
    ConsoleTransport,
    FcmTransport,
    SmtpTransport,
    Transport,
    TwilioSmsTransport,
)

ROUTES = ("push:android", "push:ios", "sms", "email")
EXTENSION = "notify_channels"


def route_of(channel: str, platform: str | None = None) -> str:
    if channel == "push":
        return f"push:{'ios' if platform == 'ios' else 'android'}"
    return channel


class Channels:
    """The transport of each route, or none (not configured in production)."""

    def __init__(self, transports: Mapping[str, Transport | None]) -> None:
        unknown = set(transports) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown routes {sorted(unknown)}")
        self._transports = {route: transports.get(route) for route in ROUTES}

    def transport(self, route: str) -> Transport | None:
        return self._transports[route]

    def describe(self) -> dict[str, str]:
        """Route -> transport class name (for the start-up log line; no secrets)."""
        return {r: type(t).__name__ if t else "not configured" for r, t in self._transports.items()}

    def close(self) -> None:
        for transport in self._transports.values():
            close = getattr(transport, "close", None)
            if callable(close):
                close()


def build_channels(config: Mapping[str, Any]) -> Channels:
    """Transports from the settings; ConfigError (naming the variable) on an unusable one."""
    timeout = float(config["NOTIFICATION_TIMEOUT_SECONDS"])
    built: dict[str, Transport | None] = {
        "push:android": _fcm(config, timeout),
        "push:ios": _apns(config, timeout),
        "sms": _twilio(config, timeout),
        "email": _smtp(config, timeout),
    }
    if config["APP_ENV"] != "production":
        for route, transport in built.items():
            if transport is None:
                built[route] = ConsoleTransport(channel=route.partition(":")[0])
    return Channels(built)


def get_channels(app: Flask | None = None) -> Channels:
    """This process's channels (built on first use; tests may install their own)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    channels = app.extensions.get(EXTENSION)
    if channels is None:
        channels = build_channels(app.config)
        app.extensions[EXTENSION] = channels
    return channels  # type: ignore[no-any-return]


def install_channels(app: Flask, transports: Mapping[str, Transport | None]) -> Channels:
    """Replace the channels of ``app`` (tests, or a host embedding its own transports)."""
    channels = Channels(transports)
    app.extensions[EXTENSION] = channels
    return channels


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}={path!r} cannot be read: {exc.strerror}") from None


def _fcm(config: Mapping[str, Any], timeout: float) -> Transport | None:
    path = config["FCM_SERVICE_ACCOUNT_FILE"]
    if not path:
        return None
    try:
        info = json.loads(_read("FCM_SERVICE_ACCOUNT_FILE", path))
        return FcmTransport.from_service_account(
            info,
            project_id=config["FCM_PROJECT_ID"],
            endpoint=config["FCM_ENDPOINT"],
            token_uri=config["FCM_TOKEN_URI"],
            timeout=timeout,
        )
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"FCM_SERVICE_ACCOUNT_FILE is not a usable service-account key: {exc}"
        ) from None


def _apns(config: Mapping[str, Any], timeout: float) -> Transport | None:
    path = config["APNS_PRIVATE_KEY_FILE"]
    if not path:
        return None
    try:
        return ApnsTransport(
            config["APNS_TEAM_ID"],
            config["APNS_KEY_ID"],
            _read("APNS_PRIVATE_KEY_FILE", path),
            config["APNS_TOPIC"],
            endpoint=config["APNS_ENDPOINT"],
            timeout=timeout,
        )
    except ValueError as exc:
        raise ConfigError(f"APNS_PRIVATE_KEY_FILE is not a usable APNs key: {exc}") from None


def _twilio(config: Mapping[str, Any], timeout: float) -> Transport | None:
    if not config["TWILIO_ACCOUNT_SID"]:
        return None
    return TwilioSmsTransport(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        config["TWILIO_FROM"] or None,
        messaging_service_sid=None
        if config["TWILIO_FROM"]
        else config["TWILIO_MESSAGING_SERVICE_SID"],
        endpoint=config["TWILIO_ENDPOINT"],
        timeout=timeout,
    )


def _smtp(config: Mapping[str, Any], timeout: float) -> Transport | None:
    if not config["SMTP_HOST"]:
        return None
    return SmtpTransport(
        config["SMTP_HOST"],
        int(config["SMTP_PORT"]),
        from_addr=config["MAIL_FROM"],
        username=config["SMTP_USERNAME"],
        password=config["SMTP_PASSWORD"],
        starttls=bool(config["SMTP_STARTTLS"]) and not config["SMTP_SSL"],
        use_ssl=bool(config["SMTP_SSL"]),
        timeout=timeout,
    )
