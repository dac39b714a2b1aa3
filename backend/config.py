"""Configuration: defaults, then environment variables, then the mapping given to ``create_app``.

Every setting is declared once in ``SETTINGS`` with its default, its parser and its meaning; the
README's configuration table is generated from the same list (``flask config-table``), so the
documentation cannot drift from the code. A missing or malformed value stops start-up with a
message naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


ENVIRONMENTS = ("development", "testing", "production")


def parse_str(value: str) -> str:
    return value


def parse_int(value: str) -> int:
    return int(value)


def parse_positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def parse_hhmm(value: str) -> time:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value.strip())
    if not match:
        raise ValueError("must be a local time HH:MM, e.g. 10:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_quiet_hours(value: str) -> tuple[time, time]:
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError("must be a range HH:MM-HH:MM, e.g. 21:00-08:00")
    start, end = parse_hhmm(parts[0]), parse_hhmm(parts[1])
    if start == end:
        raise ValueError("start and end must differ")
    return start, end


def parse_alert_targets(value: str) -> dict[str, int]:
    targets: dict[str, int] = {}
    for part in value.split(","):
        severity, _, hours = part.partition("=")
        severity = severity.strip()
        if severity not in {"urgent", "high", "routine"} or not hours.strip().isdigit():
            raise ValueError("must look like urgent=4,high=24,routine=72")
        targets[severity] = int(hours)
    if set(targets) != {"urgent", "high", "routine"}:
        raise ValueError("must give urgent, high and routine")
    return targets


def parse_snooze_limits(value: str) -> dict[str, int]:
    """``high=12,routine=72``: the longest snooze per severity, in hours; urgent never."""
    limits: dict[str, int] = {}
    for part in value.split(","):
        severity, _, hours = part.partition("=")
        severity = severity.strip()
        if severity not in {"high", "routine"} or not hours.strip().isdigit():
            raise ValueError("must look like high=12,routine=72 (urgent alerts are never snoozed)")
        limits[severity] = int(hours)
    if set(limits) != {"high", "routine"}:
        raise ValueError("must give high and routine")
    return limits


def parse_environment(value: str) -> str:
    if value not in ENVIRONMENTS:
        raise ValueError(f"must be one of {', '.join(ENVIRONMENTS)}")
    return value


def parse_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone, e.g. Europe/Paris") from exc
    return value


def parse_research_key(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 random characters")
    return value


# A reminder's link is this base, "/" and a 27-character token; the base is bounded so that the
# longest SMS text of every language plus the link stays within one GSM-7 segment (160).
ANSWER_LINK_BASE_MAX = 80
_LINK_BASE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._/-]*)?")


def parse_answer_link_base(value: str) -> str:
    base = value.strip().rstrip("/")
    if not _LINK_BASE.fullmatch(base):
        raise ValueError(
            "must be an http(s) address of letters, digits and . - _ / only "
            "(an SMS must stay in plain GSM-7 characters), e.g. https://suivi.chu.example/a"
        )
    if len(base) > ANSWER_LINK_BASE_MAX:
        raise ValueError(f"must be at most {ANSWER_LINK_BASE_MAX} characters (one SMS segment)")
    return base


def parse_fhir_token_ttl(value: str) -> int:
    number = int(value)
    if not 0 < number <= 300:
        raise ValueError("must be from 1 to 300 seconds (SMART Backend Services)")
    return number


def parse_log_level(value: str) -> str:
    upper = value.upper()
    if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return upper


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "APP_ENV",
        "production",
        parse_environment,
        "`development`, `testing` or `production`; `make run` sets `development`.",
    ),
    Setting(
        "SECRET_KEY",
        None,
        parse_str,
        "Signs access tokens and sessions. Required outside development and testing; "
        "at least 32 characters in production.",
        secret=True,
    ),
    Setting(
        "DATABASE_URL",
        None,
        parse_str,
        "SQLAlchemy URL. Default: SQLite file `instance/ir-followup.sqlite3`. Production: "
        "`postgresql+psycopg://user:password@host/db`.",
    ),
    Setting(
        "REDIS_URL",
        None,
        parse_str,
        "Shared rate-limit storage so limits hold across workers and hosts (e.g. "
        "`redis://127.0.0.1:6379/0`). Required in production (start-up stops without it: each "
        "gunicorn worker would count on its own); in-process memory in development and tests.",
    ),
    Setting(
        "ACCESS_TOKEN_TTL_SECONDS",
        900,
        parse_positive_int,
        "Lifetime of access tokens (at most 900 s).",
    ),
    Setting(
        "STAFF_REFRESH_TOKEN_TTL_DAYS",
        14,
        parse_positive_int,
        "Lifetime of a staff refresh token chain without use.",
    ),
    Setting(
        "PATIENT_REFRESH_TOKEN_TTL_DAYS",
        180,
        parse_positive_int,
        "Lifetime of a patient device's refresh token chain without use.",
    ),
    Setting(
        "LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS",
        "5 per 15 minutes",
        parse_str,
        "Failed staff logins allowed per account from one client address (Flask-Limiter "
        "notation); the right password from another address still works.",
    ),
    Setting(
        "LOGIN_LIMIT_PER_ADDRESS",
        "30 per 15 minutes",
        parse_str,
        "Failed staff logins allowed per client address over all accounts (a ward may share "
        "one address).",
    ),
    Setting(
        "LOGIN_LIMIT_PER_ACCOUNT",
        "50 per day",
        parse_str,
        "Failed logins allowed per account from addresses it has not signed in from in 90 days "
        "(guessing from many addresses); its usual addresses are never refused by this one.",
    ),
    Setting(
        "ENROLLMENT_CLAIM_LIMIT",
        "10 per 15 minutes",
        parse_str,
        "Failed enrollment-code claims allowed per client address.",
    ),
    Setting(
        "CHECKIN_LIMIT_PER_DAY",
        8,
        parse_positive_int,
        "Unscheduled check-ins a patient's phone may send in any 24 hours (a worried patient "
        "sends one to three on a bad day); more answer 429 with `Retry-After`. Nurses' entries "
        "are not counted.",
    ),
    Setting(
        "ENROLLMENT_CODE_TTL_DAYS", 14, parse_positive_int, "Validity of a patient enrollment code."
    ),
    Setting(
        "REMINDER_LOCAL_TIME",
        "10:00",
        parse_hhmm,
        "Local time (patient's zone) at which a questionnaire opens and is first reminded.",
    ),
    Setting(
        "QUIET_HOURS",
        "21:00-08:00",
        parse_quiet_hours,
        "Local quiet hours: no reminder inside; one due inside waits for the end.",
    ),
    Setting(
        "DEFAULT_TIMEZONE",
        "Europe/Paris",
        parse_timezone,
        "Time zone of a new site created from the command line.",
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        parse_int,
        "Number of reverse proxies in front of the app whose `X-Forwarded-For`, "
        "`X-Forwarded-Proto` and `X-Forwarded-Host` are trusted (Werkzeug's ProxyFix): the client "
        "address of rate limits and audit rows, and HTTPS. Set it to the real number (usually 1): "
        "more lets clients forge their address. With it, a proxy's `X-Request-ID` (32 hex "
        "digits or a UUID) is kept as the request id.",
    ),
    Setting(
        "HSTS_SECONDS",
        31536000,
        parse_int,
        "`Strict-Transport-Security` max-age sent in production (browsers then refuse plain "
        "HTTP to this host for that long); 0 sends none (e.g. when the proxy adds it).",
    ),
    Setting(
        "ALERT_TARGET_HOURS",
        "urgent=4,high=24,routine=72",
        parse_alert_targets,
        "Hours within which an alert of each severity must be acknowledged; after that it is "
        "overdue, rises in the queue and the site's physicians are told once.",
    ),
    Setting(
        "ALERT_SNOOZE_MAX_HOURS",
        "high=12,routine=72",
        parse_snooze_limits,
        "Longest time a nurse may put an alert of each severity aside (snooze), in hours; "
        "urgent alerts are never snoozed. Overdue and escalation keep counting meanwhile.",
    ),
    Setting(
        "ALERT_DIGEST_LOCAL_TIME",
        "08:00",
        parse_hhmm,
        "Site-local time of the daily e-mail telling nurses how many routine alerts are new "
        "(urgent and high alerts are announced at once).",
    ),
    Setting(
        "STAFF_BASE_URL",
        "http://127.0.0.1:5000",
        parse_str,
        "Address of the nurse pages, for the links in staff e-mails.",
    ),
    # --- answering from a reminder's link (backend/questionnaires/links.py) ---
    Setting(
        "ANSWER_LINK_BASE_URL",
        None,
        parse_answer_link_base,
        "Address of the answer pages for patients without the app: an SMS or e-mail reminder "
        "carries this, `/` and a single-use token (this app's `/a/<token>` pages). Default: "
        "`STAFF_BASE_URL` followed by `/a`. At most 80 characters of `A-Z a-z 0-9 . - _ /` (the "
        "SMS stays one GSM-7 segment); must be HTTPS in production once SMS or e-mail is "
        "configured.",
    ),
    Setting(
        "ANSWER_LINK_MAX_TRIES",
        3,
        parse_positive_int,
        "Wrong years of birth allowed on one link before it is locked for good (counted in the "
        "database, so across workers); the patient then answers in the app, from a later "
        "reminder's link or with a nurse.",
    ),
    Setting(
        "ANSWER_LINK_SESSION_MINUTES",
        60,
        parse_positive_int,
        "How long a browser that passed the year-of-birth check may take to answer (never past "
        "the questionnaire's window, which is the link's own lifetime).",
    ),
    Setting(
        "ANSWER_LINK_LIMIT",
        "60 per 15 minutes",
        parse_str,
        "Requests to the answer pages allowed per client address (Flask-Limiter notation); "
        "more answer 429 with `Retry-After`. One questionnaire takes about 15 (a household "
        "behind one address may answer two).",
    ),
    Setting("LOG_LEVEL", "INFO", parse_log_level, "Log level of the JSON logs on stderr."),
    Setting("SQL_ECHO", False, parse_bool, "Log every SQL statement (development only)."),
    # --- research (backend/research) ---
    Setting(
        "RESEARCH_PSEUDONYM_KEY",
        None,
        parse_research_key,
        "Key of the research export's pseudonyms (HMAC-SHA256 of the patient id), kept apart "
        "from every other secret; at least 32 characters. Unset: no export.",
        secret=True,
    ),
    Setting(
        "RESEARCH_EXPORT_DIR",
        None,
        parse_str,
        "Directory where the scheduler writes research exports for download. Default: "
        "`instance/research-exports`; shared by the API and the scheduler when on two hosts.",
    ),
    # --- FHIR (backend/fhir) ---
    Setting(
        "FHIR_CANONICAL_BASE",
        "https://fhir.ir-followup.example",
        parse_str,
        "Base of the canonical URLs of our FHIR CodeSystems, Questionnaires and extensions "
        "(e.g. `https://fhir.chu-lyon.fr/ir-followup`); set it once: consumers store these URLs.",
    ),
    Setting(
        "FHIR_ACCESS_TOKEN_TTL_SECONDS",
        300,
        parse_fhir_token_ttl,
        "Lifetime of a system client's FHIR access token (SMART Backend Services; at most 300 s).",
    ),
    Setting(
        "FHIR_EXPORT_TTL_HOURS",
        24,
        parse_positive_int,
        "Hours a finished Bulk Data export's files stay downloadable; then the scheduler deletes "
        "them (stored in the database, so every host serves them).",
    ),
    # --- scheduler and notifications (backend/schedule, backend/notify) ---
    Setting(
        "APP_DEEP_LINK_BASE",
        "irfollowup://questionnaires/",
        parse_str,
        "Deep link into the phone app; a reminder carries this followed by the questionnaire "
        "(assignment) id, and nothing else.",
    ),
    Setting(
        "SCHEDULER_INTERVAL_SECONDS",
        30,
        parse_positive_int,
        "Seconds between two passes of `flask scheduler run` over the due work.",
    ),
    Setting(
        "SCHEDULER_BATCH_SIZE",
        500,
        parse_positive_int,
        "Rows a scheduler claims and commits at a time (questionnaires, reminders, deliveries). "
        "The reminder pipeline starts each pass with batches of 25 and doubles them up to this.",
    ),
    Setting(
        "SCHEDULER_LEASE_SECONDS",
        300,
        parse_positive_int,
        "How long a claimed delivery belongs to one scheduler process; after it, another "
        "takes it up (a killed process loses nothing). Keep it well above a batch's send time.",
    ),
    Setting(
        "NOTIFICATION_MAX_ATTEMPTS",
        12,
        parse_positive_int,
        "Attempts on one channel before it is given up and the next channel of the patient "
        "is tried.",
    ),
    Setting(
        "NOTIFICATION_RETRY_BASE_SECONDS",
        30,
        parse_positive_int,
        "First retry delay after a transient failure; doubles at each attempt (with jitter), "
        "never shorter than the provider's `Retry-After`.",
    ),
    Setting(
        "NOTIFICATION_RETRY_MAX_SECONDS",
        1800,
        parse_positive_int,
        "Longest delay between two attempts (before `Retry-After`).",
    ),
    Setting(
        "NOTIFICATION_TIMEOUT_SECONDS",
        10,
        parse_positive_int,
        "Timeout of one provider call (SMTP, FCM, APNs, Twilio).",
    ),
    Setting(
        "SMTP_HOST",
        None,
        parse_str,
        "SMTP relay for e-mail (patients' reminders, staff notifications). Unset: e-mail is "
        "printed to the console in development and refused in production (next channel).",
    ),
    Setting("SMTP_PORT", 587, parse_positive_int, "SMTP port (587 STARTTLS, 465 implicit TLS)."),
    Setting("SMTP_USERNAME", None, parse_str, "SMTP login; no AUTH when unset."),
    Setting("SMTP_PASSWORD", None, parse_str, "SMTP password.", secret=True),
    Setting(
        "SMTP_STARTTLS",
        True,
        parse_bool,
        "Upgrade the SMTP connection with STARTTLS (certificate verified).",
    ),
    Setting("SMTP_SSL", False, parse_bool, "Implicit TLS from the first byte (port 465)."),
    Setting(
        "MAIL_FROM",
        None,
        parse_str,
        "Sender address of every e-mail, e.g. `Suivi RI <no-reply@chu.example>`; required "
        "with `SMTP_HOST`.",
    ),
    Setting(
        "FCM_PROJECT_ID",
        None,
        parse_str,
        "Firebase project of Android push (FCM HTTP v1); default: the service account's.",
    ),
    Setting(
        "FCM_SERVICE_ACCOUNT_FILE",
        None,
        parse_str,
        "Path of the Firebase service-account JSON key. Unset: Android push is printed to the "
        "console in development and refused in production.",
    ),
    Setting(
        "FCM_ENDPOINT",
        "https://fcm.googleapis.com",
        parse_str,
        "FCM API base URL (tests point it at a local stand-in).",
    ),
    Setting(
        "FCM_TOKEN_URI",
        None,
        parse_str,
        "OAuth2 token endpoint overriding the service account's (tests only).",
    ),
    Setting("APNS_TEAM_ID", None, parse_str, "Apple developer team id (APNs token auth)."),
    Setting("APNS_KEY_ID", None, parse_str, "Id of the APNs auth key (.p8)."),
    Setting(
        "APNS_PRIVATE_KEY_FILE",
        None,
        parse_str,
        "Path of the APNs auth key (.p8). Unset: iOS push is printed to the console in "
        "development and refused in production.",
    ),
    Setting("APNS_TOPIC", None, parse_str, "The iOS app's bundle id (`apns-topic`)."),
    Setting(
        "APNS_ENDPOINT",
        "https://api.push.apple.com",
        parse_str,
        "APNs base URL (`https://api.sandbox.push.apple.com` for development builds).",
    ),
    Setting(
        "TWILIO_ACCOUNT_SID",
        None,
        parse_str,
        "Twilio account for SMS. Unset: SMS is printed to the console in development and "
        "refused in production.",
    ),
    Setting("TWILIO_AUTH_TOKEN", None, parse_str, "Twilio auth token.", secret=True),
    Setting("TWILIO_FROM", None, parse_str, "Sender number (E.164) of SMS."),
    Setting(
        "TWILIO_MESSAGING_SERVICE_SID",
        None,
        parse_str,
        "Twilio messaging service, instead of `TWILIO_FROM`.",
    ),
    Setting(
        "TWILIO_ENDPOINT",
        "https://api.twilio.com",
        parse_str,
        "Twilio API base URL (tests point it at a local stand-in).",
    ),
)

# A channel is configured by all of its settings or none: half a configuration is a typo.
CHANNEL_SETTINGS: dict[str, tuple[str, ...]] = {
    "e-mail": ("SMTP_HOST", "MAIL_FROM"),
    "Android push (FCM)": ("FCM_SERVICE_ACCOUNT_FILE",),
    "iOS push (APNs)": ("APNS_TEAM_ID", "APNS_KEY_ID", "APNS_PRIVATE_KEY_FILE", "APNS_TOPIC"),
    "SMS (Twilio)": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"),
}

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def load_config(
    instance_path: str,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve every setting: default, then environment variable, then override.

    Overrides may carry already-parsed values (tests pass ``ACCESS_TOKEN_TTL_SECONDS=5``) or
    strings, which are parsed like environment variables. Keys that are not settings are passed
    through untouched (Flask's own keys, e.g. ``TESTING``).
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    resolved: dict[str, Any] = {}
    for setting in SETTINGS:
        raw: Any = setting.default
        source = "default"
        if setting.name in environ:
            raw, source = environ[setting.name], "environment"
        if setting.name in overrides:
            raw, source = overrides.pop(setting.name), "override"
        if isinstance(raw, str) and (source != "default" or setting.parse is not parse_str):
            try:
                raw = setting.parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if setting.secret else repr(raw)
                raise ConfigError(f"{setting.name}={shown} is invalid: {exc}") from exc
        resolved[setting.name] = raw

    env = resolved["APP_ENV"]
    if not resolved["SECRET_KEY"]:
        if env == "production":
            raise ConfigError(
                "SECRET_KEY is required in production (set APP_ENV=development for local runs)"
            )
        resolved["SECRET_KEY"] = f"insecure-{env}-key-not-for-production-use-0123456789"
    elif env == "production" and len(resolved["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY is too short: use at least 32 random characters")
    if env == "production" and not resolved["REDIS_URL"]:
        raise ConfigError(
            "REDIS_URL is required in production: without shared storage each worker counts "
            "sign-in and enrollment failures on its own, multiplying the limits"
        )
    if not resolved["ANSWER_LINK_BASE_URL"]:
        try:
            resolved["ANSWER_LINK_BASE_URL"] = parse_answer_link_base(
                f"{str(resolved['STAFF_BASE_URL']).rstrip('/')}/a"
            )
        except ValueError as exc:
            raise ConfigError(
                f"ANSWER_LINK_BASE_URL (unset: STAFF_BASE_URL + /a) is invalid: {exc}"
            ) from exc
    if (
        env == "production"
        and (resolved["TWILIO_ACCOUNT_SID"] or resolved["SMTP_HOST"])
        and not resolved["ANSWER_LINK_BASE_URL"].startswith("https://")
    ):
        raise ConfigError(
            "ANSWER_LINK_BASE_URL must be an https:// address in production: reminders sent by "
            "SMS or e-mail carry it"
        )
    if resolved["ACCESS_TOKEN_TTL_SECONDS"] > 900:
        raise ConfigError("ACCESS_TOKEN_TTL_SECONDS must be at most 900 (15 minutes)")
    _check_channels(resolved)
    if not resolved["DATABASE_URL"]:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        resolved["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'ir-followup.sqlite3'}"
    if not resolved["RESEARCH_EXPORT_DIR"]:
        resolved["RESEARCH_EXPORT_DIR"] = str(Path(instance_path) / "research-exports")
    resolved.update(overrides)
    return resolved


def _check_channels(resolved: Mapping[str, Any]) -> None:
    for channel, names in CHANNEL_SETTINGS.items():
        missing = [name for name in names if not resolved[name]]
        if missing and len(missing) < len(names):
            raise ConfigError(f"{channel} is half configured: set {', '.join(missing)} too")
    if resolved["TWILIO_ACCOUNT_SID"] and not (
        resolved["TWILIO_FROM"] or resolved["TWILIO_MESSAGING_SERVICE_SID"]
    ):
        raise ConfigError("SMS (Twilio) needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")


def markdown_table() -> str:
    """The configuration table of the README, generated from ``SETTINGS``."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "(none)" if setting.default is None else f"`{setting.default}`"
        lines.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(lines)
