"""What a production start-up can check beyond the settings, logged once, never fatal.

Missing settings stop start-up (``backend.config``: ``SECRET_KEY``, ``REDIS_URL``); what needs a
server (Redis answering, the database role's rights on the audit log) can only be looked at, and a
start-up that failed because Redis or PostgreSQL restarted a second too late would be worse than
a clear line in the log. Each problem is one ``WARNING`` (or ``ERROR``) line of
``backend.service.checks`` naming the setting or the command that fixes it.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask

from backend.extensions import db

log = logging.getLogger(__name__)


def check_production(app: Flask) -> list[str]:
    """Run the checks; return the problems found (also logged)."""
    found: list[str] = []
    found += _check_redis(app.config["REDIS_URL"])
    with app.app_context():
        found += _check_database()
    if not app.config["TRUSTED_PROXIES"]:
        found.append(
            "TRUSTED_PROXIES=0: behind a reverse proxy every client has the proxy's address "
            "(rate limits and audit rows); set it to the number of proxies"
        )
    for problem in found:
        log.warning("start-up check: %s", problem)
    return found


def _check_redis(url: str) -> list[str]:
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return [
            f"REDIS_URL does not answer ({type(exc).__name__}): rate limits fall back to each "
            "worker's memory until it does"
        ]
    return []


def _check_database() -> list[str]:
    from backend.service.roles import audit_rights_problems

    try:
        with db.engine.connect() as connection:
            if connection.dialect.name != "postgresql":
                return ["DATABASE_URL is not PostgreSQL: run production on PostgreSQL"]
            problems = audit_rights_problems(connection)
    except sa.exc.SQLAlchemyError as exc:
        return [f"DATABASE_URL does not answer ({type(exc).__name__}); not checked"]
    finally:
        db.engine.dispose()  # no connection inherited by gunicorn's forked workers
    return [
        f"the database role {problem}: connect the app as the role of "
        "`flask db grant-app-role` (README, Running in production)"
        for problem in problems
    ]
