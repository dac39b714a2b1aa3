"""The nurse pages: server-rendered HTML on top of the alert and patient services.

Sign-in with the staff accounts (a signed session cookie naming an ``AuthSession``), the triage
queue, the alert page, the patient's trajectory and registration at discharge; French and
English; CSRF on every form. The pages call the same services as the API and never hold
business rules of their own.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages, their language support and their CSRF protection."""
    from backend.web import answer_link, i18n
    from backend.web.blueprint import bp, csrf
    from backend.web.views import (  # noqa: F401
        alerts,
        answers,
        auth,
        patients,
        queue,
        registration,
        research,
        workflow,
    )

    # Only the pages check CSRF tokens (their blueprint opts in); the API uses bearer tokens.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # A token lives as long as the sign-in: a form left open over a long shift still posts.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(answer_link.bp)  # patients answering from a reminder's link
