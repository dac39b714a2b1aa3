"""IR bone-consolidation follow-up: the application factory.

``create_app`` reads like a table of contents: configuration, logging, database, API and errors,
then each domain's blueprint and commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import logs, uow
from backend.clock import Clock, ShiftedClock, demo_clock_path
from backend.config import load_config
from backend.context import assign_request_id, request_id
from backend.db import json_loads
from backend.errors import Problem, ProblemApi, handle_problem, register_outage_handlers
from backend.extensions import db, limiter, migrate
from backend.fields import KeyConverter
from backend.jsonlimits import MAX_DEPTH, BoundedJSONProvider, TooDeep


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then environment variables, then ``config``."""
    app = logs.App(__name__, instance_relative_config=True)
    app.json = BoundedJSONProvider(app)  # a 100,000-deep body is a 400, not a RecursionError
    overrides = dict(config or {})
    clock = overrides.pop("CLOCK", None)
    app.config.update(load_config(app.instance_path, overrides))
    app.extensions["clock"] = clock or _default_clock(app)
    app.config.update(_derived_settings(app.config))
    logs.configure_logging(app.config["LOG_LEVEL"])

    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    _init_database(app)
    migrate.init_app(
        app,
        db,
        directory=str(_project_root() / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    # Registered before the limiter's own hook, so it runs after it (Flask runs them in reverse).
    app.after_request(_retry_after_only_when_refused)
    limiter.init_app(app)
    # One Api per application (not a module singleton): tests build many apps.
    api = ProblemApi(app)
    app.extensions["smorest_api"] = api
    app.url_map.converters["key"] = KeyConverter
    api.register_converter(KeyConverter, lambda converter: dict(converter.schema))
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    app.register_error_handler(Problem, handle_problem)
    register_outage_handlers(app)
    _init_request_hooks(app)
    uow.init_app(app)  # after the hooks above: runs first, so a failed commit gets headers
    logs.init_app(app)

    _register_domains(app, api)
    _connect_signals(app)
    if app.config["APP_ENV"] == "production":
        from backend.service.checks import check_production

        check_production(app)
    return app


def _default_clock(app: Flask) -> Clock:
    """Wall-clock time; in development, shifted by ``flask demo clock advance``."""
    if app.config["APP_ENV"] == "development":
        return ShiftedClock(demo_clock_path(app.instance_path))
    return Clock()


def _project_root() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


# The answers whose ``Retry-After`` asks the client to wait: too many requests, unavailable, a
# FHIR Bulk export still in progress (202, its polling interval), redirects (RFC 9110).
_WAIT_STATUSES = frozenset({202, 429, 503, *range(300, 400)})


def _retry_after_only_when_refused(response: Response) -> Response:
    """``Retry-After`` only on the answers that ask the client to wait (``_WAIT_STATUSES``).
    Flask-Limiter sets it on every answer of a limited route to the end of the window: a phone
    honouring it would wait 15 minutes to retype a mistyped enrollment code (a 400). The
    ``X-RateLimit-*`` headers stay: they say what is left without asking anyone to wait."""
    if response.status_code not in _WAIT_STATUSES:
        response.headers.pop("Retry-After", None)
    return response


def _derived_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings of the extensions, derived from ours (users never set these directly)."""
    env = config["APP_ENV"]
    return {
        "TESTING": env == "testing",
        "DEBUG": False,
        # Tests see what users see: a 500 problem, not a propagated exception.
        "PROPAGATE_EXCEPTIONS": False,
        "SQLALCHEMY_DATABASE_URI": config["DATABASE_URL"],
        "SQLALCHEMY_ECHO": config["SQL_ECHO"],
        # Statement parameters can hold health data: keep them out of exception messages.
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "hide_parameters": not config["SQL_ECHO"],
            "pool_pre_ping": True,
            "json_deserializer": json_loads,
        },
        "RATELIMIT_STORAGE_URI": config["REDIS_URL"] or "memory://",
        "RATELIMIT_ENABLED": config.get("RATELIMIT_ENABLED", True),
        "RATELIMIT_KEY_PREFIX": "ir-followup",
        # Redis unreachable: each worker counts on its own until it answers again, rather than
        # failing every sign-in (a nurse kept from the queue) or counting nothing.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "API_TITLE": "IR bone-consolidation follow-up API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Swagger UI's files come from the flask-swagger-ui package, served by the app itself:
        # the docs work on a hospital network without internet access.
        "OPENAPI_SWAGGER_UI_URL": "/api/v1/docs/assets/",
        "API_SPEC_OPTIONS": {
            "security": [{"bearerAuth": []}],
            "info": {
                "description": "Follow-up of patients after percutaneous bone "
                "consolidation. Errors are RFC 9457 problem details."
            },
        },
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "JSON_SORT_KEYS": False,
    }


def _init_database(app: Flask) -> None:
    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _configure_sqlite(db.engine)


def _configure_sqlite(engine: sa.Engine) -> None:
    """Make SQLite behave: foreign keys on, real transactions, one writer at a time.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; the SQLAlchemy
    documentation's recipe takes it over. BEGIN IMMEDIATE takes the write lock at the start, so
    two writers queue (busy timeout) instead of failing on a lock upgrade.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _init_request_hooks(app: Flask) -> None:
    @app.before_request
    def _before() -> None:
        # Nothing about the caller survives from a previous request sharing the app context
        # (tests push one for a whole test; a stale principal would sign the wrong audit rows).
        g.pop("principal", None)
        assign_request_id()
        if (
            request.path.startswith("/api")
            and request.method in _BODY_METHODS
            and request.get_data(cache=True)
        ):
            if not request.is_json:
                raise UnsupportedMediaType("The request body must be application/json.")
            try:  # malformed or too deep: 400 before any view runs
                body = app.json.loads(request.get_data(cache=True))
            except TooDeep:
                raise BadRequest(
                    f"The request body nests JSON more than {MAX_DEPTH} levels deep."
                ) from None
            except ValueError:
                body = None
            if body is None:
                raise BadRequest("The request body is not valid JSON.")

    @app.after_request
    def _after(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id() or ""
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/api"):
            # Patient data must not linger in shared caches or the browser's.
            response.headers.setdefault("Cache-Control", "no-store")
        if app.config["APP_ENV"] == "production" and app.config["HSTS_SECONDS"] > 0:
            response.headers.setdefault(
                "Strict-Transport-Security",
                f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains",
            )
        return response


def _connect_signals(app: Flask) -> None:
    """Who listens to what (``backend.signals`` documents each signal), for this app only."""
    from blinker import NamedSignal

    from backend import signals
    from backend.alerts import jobs as alert_jobs
    from backend.alerts import services as alerts
    from backend.alerts.presenters import timeline_alerts
    from backend.fhir import bulk as fhir_bulk
    from backend.notify.record import on_follow_up_stopped as cancel_notifications
    from backend.research import jobs as research_jobs
    from backend.schedule.services import on_follow_up_stopped as skip_reminders
    from backend.schedule.services import unwanted_reminders

    connections: tuple[tuple[NamedSignal, tuple[signals.Receiver, ...]], ...] = (
        (signals.patient_timeline, (timeline_alerts,)),
        (
            signals.follow_up_stopped,
            (alerts.on_follow_up_stopped, skip_reminders, cancel_notifications),
        ),
        (signals.response_recorded, (alerts.on_response,)),
        (signals.questionnaire_missed, (alerts.on_missed,)),
        (signals.alert_raised, (alert_jobs.announce,)),
        (signals.alert_news, (alert_jobs.announce_news,)),
        (signals.response_advice, (alerts.emergency_advice,)),
        (
            signals.scheduler_jobs,
            (alert_jobs.scheduler_jobs, research_jobs.scheduler_jobs, fhir_bulk.scheduler_jobs),
        ),
        (signals.staff_texts, (alert_jobs.staff_texts,)),
        (signals.outbox_still_wanted, (unwanted_reminders,)),
    )
    for signal, receivers in connections:
        for receiver in receivers:
            signal.connect(receiver, sender=app)
    signals.check_required(app)


def _register_domains(app: Flask, api: ProblemApi) -> None:
    from flask_migrate.cli import db as db_cli_group

    from backend.alerts.cli import rules_cli
    from backend.alerts.routes import blp as alerts_blp
    from backend.alerts.routes import handover_blp, reports_blp
    from backend.auth.cli import users_cli
    from backend.auth.routes import blp as auth_blp
    from backend.auth.routes import users_blp
    from backend.demo import demo_cli, seed_on_first_run_command
    from backend.fhir.cli import fhir_cli
    from backend.fhir.routes import bp as fhir_bp
    from backend.patients.routes import blp as patients_blp
    from backend.patients.routes import enrollment_blp
    from backend.patients.services import patient_session_principal, resolve_patient_session
    from backend.questionnaires.routes import instruments_blp, me_blp
    from backend.research.cli import research_cli
    from backend.research.routes import blp as research_blp
    from backend.schedule.cli import scheduler_cli  # also loads the schedule and notify models
    from backend.service.cli import config_table_command
    from backend.service.roles import grant_app_role_command
    from backend.service.routes import blp as service_blp
    from backend.service.routes import swagger_assets_blueprint
    from backend.web import init_app as init_web_pages

    api.register_blueprint(service_blp)
    app.register_blueprint(swagger_assets_blueprint())
    api.register_blueprint(auth_blp)
    api.register_blueprint(users_blp)
    api.register_blueprint(patients_blp)
    api.register_blueprint(enrollment_blp)
    api.register_blueprint(me_blp)
    api.register_blueprint(instruments_blp)
    api.register_blueprint(alerts_blp)
    api.register_blueprint(reports_blp)
    api.register_blueprint(handover_blp)
    api.register_blueprint(research_blp)
    app.register_blueprint(fhir_bp)  # /fhir/R4: FHIR clients read its CapabilityStatement
    app.extensions["patient_principal_resolver"] = resolve_patient_session
    app.extensions["patient_session_principal"] = patient_session_principal
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(seed_on_first_run_command)
    app.cli.add_command(config_table_command)
    db_cli_group.add_command(grant_app_role_command)  # flask db grant-app-role ROLE
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(rules_cli)
    app.cli.add_command(research_cli)
    app.cli.add_command(fhir_cli)
    init_web_pages(app)  # the nurse pages under / (backend/web)
