"""The answer pages of a reminder's link: a patient (or the caregiver) without the app answers
one questionnaire in any phone's browser.

``GET /a/<token>`` asks the patient's year of birth; once it is right, one question per screen,
generated from the questionnaire's versioned instrument (the API's items, values and texts, in
the patient's language), then a screen to check the answers and send them, then a confirmation
with the emergency advice at the top when the answers raised a red flag. No JavaScript: every
screen is a form posted to the server, which carries the answers given so far in hidden fields
and checks them again at the end (``record_response``, the app's service). Large type in rem
(it follows the browser's text size), big touch targets, plain words.

The rules of the link (single use, hashed, tries, sessions) are in
``backend.questionnaires.links``; these pages only render and route.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import refresh as babel_refresh
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict

from backend.clock import utcnow
from backend.errors import Problem, ValidationProblem
from backend.extensions import db, limiter
from backend.locales import accepted_locale
from backend.patients.models import Patient
from backend.questionnaires import links
from backend.questionnaires import services as questionnaires
from backend.questionnaires.models import Response as QuestionnaireResponse
from backend.uow import keep_on_error
from backend.web import forms
from backend.web.blueprint import CONTENT_SECURITY_POLICY, csrf

bp = Blueprint("answer", __name__, url_prefix=links.LINK_PATH)
limiter.limit(lambda: current_app.config["ANSWER_LINK_LIMIT"], scope="answer-link")(bp)

COOKIE = "answer_session"
SOURCES = ("patient", "caregiver")


@bp.before_request
def _start() -> None:
    g.pop("csrf_token", None)
    g.answer_locale = _pick_locale(None)
    babel_refresh()
    csrf.protect()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    # The token is in the path: never sent on to another site, never kept by a cache.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _pick_locale(patient_locale: str | None) -> str:
    """The language asked for on the page (the switch), else the patient's, else the browser's."""
    asked = request.values.get("lang")
    if asked in ("fr", "en"):
        return asked
    if patient_locale in ("fr", "en"):
        return str(patient_locale)
    return accepted_locale(request.accept_languages) or "fr"


def _page(template: str, status: int = 200, **context: Any) -> Response:
    locale = g.answer_locale
    with force_locale(locale):
        html = render_template(f"answer/{template}", locale=locale, **context)
    return Response(html, status=status, mimetype="text/html")


def _refused(reason: str) -> Response:
    status = {"unknown": 404, "locked": 403}.get(reason, 410)
    return _page("refused.html", status=status, reason=reason)


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded) -> Response:
    db.session.rollback()
    response = _page("refused.html", status=429, reason="too_many")
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> Response:
    return _page("refused.html", status=400, reason="expired_form")


def _open(token: str, *, for_update: bool = False) -> links.Opened | Response:
    try:
        opened = links.open_link(token, now=utcnow(), for_update=for_update)
    except links.LinkRefused as refused:
        if refused.link is not None:
            patient_locale = _patient_locale(refused.link.patient_id)
            g.answer_locale = _pick_locale(patient_locale)
        db.session.rollback()
        return _refused(refused.reason)
    g.answer_locale = _pick_locale(opened.patient.locale)
    return opened


def _patient_locale(patient_id: uuid.UUID) -> str | None:
    from backend.patients.models import Patient

    patient = db.session.get(Patient, patient_id)
    return patient.locale if patient is not None else None


def _in_session(opened: links.Opened) -> bool:
    return links.in_session(opened.link, request.cookies.get(COOKIE), now=utcnow())


# --- the check ---------------------------------------------------------------------------------


@bp.get("/<token>")
def start(token: str) -> Response:
    """The year-of-birth check, or the first screen when this browser passed it."""
    opened = _open(token)
    if isinstance(opened, Response):
        return opened
    if _in_session(opened):
        return _step(opened, token, _fresh_values(), step=0)
    return _page("check.html", token=token, tries_left=links.tries_left(opened.link))


@bp.post("/<token>")
def check(token: str) -> Response:
    opened = _open(token, for_update=True)
    if isinstance(opened, Response):
        return opened
    result = links.check_birth_year(opened, request.form.get("year", ""), now=utcnow())
    keep_on_error()  # the try counts whatever this request answers
    if not result.passed:
        if result.tries_left == 0:
            return _refused("locked")
        return _page(
            "check.html",
            status=422,
            token=token,
            tries_left=result.tries_left,
            wrong=True,
            typed=request.form.get("year", "")[:8],
        )
    response = redirect(_url("answer.start", token=token), code=303)
    minutes = int(current_app.config["ANSWER_LINK_SESSION_MINUTES"])
    response.set_cookie(
        COOKIE,
        result.session_secret or "",
        max_age=minutes * 60,
        path=f"{links.LINK_PATH}/{token}",
        secure=current_app.config["APP_ENV"] == "production",
        httponly=True,
        samesite="Lax",
    )
    return response  # type: ignore[return-value]


def _url(endpoint: str, **values: Any) -> str:
    lang = request.values.get("lang")
    if lang in ("fr", "en"):
        values["lang"] = lang
    return url_for(endpoint, **values)


# --- the questions -----------------------------------------------------------------------------


def _fresh_values() -> MultiDict[str, str]:
    return MultiDict({"form_token": str(uuid.uuid4())})


def _screens(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One screen per item, after the screen that asks who answers."""
    return list(definition["items"])


def _step(
    opened: links.Opened,
    token: str,
    values: MultiDict[str, str],
    *,
    step: int,
    error: str | None = None,
    status: int = 200,
) -> Response:
    with force_locale(g.answer_locale):
        definition = questionnaires.localise(opened.instrument.definition, g.answer_locale)
    items = _screens(definition)
    step = max(0, min(step, len(items) + 1))
    item = items[step - 1] if 1 <= step <= len(items) else None
    shown = {forms.answer_field(item["id"])} if item else set()
    if step == 0:
        shown.add("source")
    carried = [
        (name, value)
        for name in ["source", *(forms.answer_field(i["id"]) for i in items)]
        if name not in shown
        for value in values.getlist(name)
    ]
    answers = forms.answers_from_form(opened.instrument.definition, values)
    return _page(
        "step.html",
        status=status,
        token=token,
        step=step,
        total=len(items),
        item=item,
        items=items,
        field=forms.answer_field,
        values=values,
        carried=carried,
        answers=answers,
        error=error,
        title=definition["title"],
    )


@bp.post("/<token>/answers")
def answers(token: str) -> Response:
    """One screen posted: go on, go back, or send."""
    form = request.form
    form_token = form.get("form_token", "")
    try:
        form_token = str(uuid.UUID(form_token))
    except ValueError:
        return _page("refused.html", status=400, reason="expired_form")
    go = form.get("go", "next")
    opened = _open(token, for_update=go == "send")
    if isinstance(opened, Response):
        replay = links.replayed(token, form_token) if go == "send" else None
        if replay is not None and _cookie_matches(token):
            return _to_done(token)
        return opened
    if not _in_session(opened):
        db.session.rollback()
        return _page(
            "check.html",
            status=401,
            token=token,
            tries_left=links.tries_left(opened.link),
            expired=True,
        )
    try:
        step = int(form.get("step", "0"))
    except ValueError:
        step = 0
    values = MultiDict(form)
    if go == "back":
        return _step(opened, token, values, step=step - 1)
    items = opened.instrument.definition["items"]
    if go == "send":
        return _send(opened, token, values, form_token)
    problem = _screen_problem(items, values, step)  # "next" (or anything else: never a send)
    if problem:
        return _step(opened, token, values, step=step, error=problem, status=422)
    return _step(opened, token, values, step=step + 1)


def _screen_problem(
    items: list[dict[str, Any]], values: MultiDict[str, str], step: int
) -> str | None:
    """What is wrong with this screen's answer, in plain words; None when it may go on."""
    if step == 0:
        return None if values.get("source") in SOURCES else _("Choose who is answering.")
    if not 1 <= step <= len(items):
        return None
    item = items[step - 1]
    answers = forms.answers_from_form({"items": [item]}, values)
    if questionnaires.validate_answers({"items": [item]}, answers):
        if item["type"] == "text":
            return str(_("This answer is too long."))
        return str(_("Choose an answer to go on."))
    return None


def _send(
    opened: links.Opened, token: str, values: MultiDict[str, str], form_token: str
) -> Response:
    items = opened.instrument.definition["items"]
    for step in range(len(items) + 1):
        problem = _screen_problem(items, values, step)
        if problem:
            db.session.rollback()
            return _step(opened, token, values, step=step, error=problem, status=422)
    try:
        links.submit(
            opened,
            source=values["source"],
            answers=forms.answers_from_form(opened.instrument.definition, values),
            form_token=form_token,
            now=utcnow(),
        )
    except ValidationProblem:
        db.session.rollback()
        return _step(
            opened, token, values, step=1, error=_("Choose an answer to go on."), status=422
        )
    except Problem:  # answered meanwhile (the app, a nurse), closed, cancelled
        db.session.rollback()
        return _refused("answered")
    return _to_done(token)


def _to_done(token: str) -> Response:
    return redirect(_url("answer.done", token=token), code=303)  # type: ignore[return-value]


def _cookie_matches(token: str) -> bool:
    link = links.find(token)
    return link is not None and links.in_session(link, request.cookies.get(COOKIE), now=utcnow())


@bp.get("/<token>/done")
def done(token: str) -> Response:
    """The confirmation, with the emergency advice first when the answers raised a red flag;
    only for the browser that sent them (the link alone shows that it was used, nothing else)."""
    link = links.find(token)
    if link is None:
        return _refused("unknown")
    g.answer_locale = _pick_locale(_patient_locale(link.patient_id))
    if link.response_id is None:
        return redirect(_url("answer.start", token=token), code=303)  # type: ignore[return-value]
    if not _cookie_matches(token):
        return _refused("answered")
    response = db.session.get(QuestionnaireResponse, link.response_id)
    assert response is not None
    patient = db.session.get(Patient, link.patient_id)
    assert patient is not None
    advice = questionnaires.advice_for(response, patient)
    return _page("done.html", advice=advice, source=response.source)
