"""Channel wiring from the settings: all of a provider's settings or none, readable key files."""

from __future__ import annotations

import pytest

from backend.config import ConfigError, load_config
from backend.notify.channels import build_channels


def settings(tmp_path, **values):
    return load_config(str(tmp_path), environ={"APP_ENV": "development", **values})


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"SMTP_HOST": "smtp.chu-lyon.example"}, "MAIL_FROM"),
        ({"APNS_TEAM_ID": "TEAM123456", "APNS_TOPIC": "org.example.app"}, "APNS_KEY_ID"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM"),
    ],
)
def test_a_half_configured_channel_stops_start_up_naming_what_is_missing(tmp_path, values, missing):
    with pytest.raises(ConfigError, match=missing):
        settings(tmp_path, **values)


def test_an_unreadable_key_file_is_named_when_the_channels_are_built(tmp_path):
    config = settings(tmp_path, FCM_SERVICE_ACCOUNT_FILE=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="FCM_SERVICE_ACCOUNT_FILE"):
        build_channels(config)
    (tmp_path / "AuthKey.p8").write_text("not a key")
    config = settings(
        tmp_path,
        APNS_TEAM_ID="T",
        APNS_KEY_ID="K",
        APNS_TOPIC="org.example.app",
        APNS_PRIVATE_KEY_FILE=str(tmp_path / "AuthKey.p8"),
    )
    with pytest.raises(ConfigError, match="APNS_PRIVATE_KEY_FILE"):
        build_channels(config)


def test_the_scheduler_refuses_to_start_on_a_broken_channel(app, tmp_path):
    app.config["FCM_SERVICE_ACCOUNT_FILE"] = str(tmp_path / "missing.json")
    app.extensions.pop("notify_channels", None)
    result = app.test_cli_runner().invoke(args=["scheduler", "run-once"])
    assert result.exit_code == 1
    assert "FCM_SERVICE_ACCOUNT_FILE" in result.output and "Traceback" not in result.output
