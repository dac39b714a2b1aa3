"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from backend.auth import services
from backend.auth.throttle import login_rate_limits
from backend.clock import utcnow
from backend.fields import is_storable
from backend.locales import LOCALES
from backend.uow import keep_on_error
from backend.web.blueprint import bp
from backend.web.i18n import SESSION_LOCALE
from backend.web.session import current_auth_session, forget, safe_next, sign_in, staff_page


def render_login(error: str | None = None, status: int = 200) -> Response:
    ended = request.args.get("ended") == "1"
    return Response(
        render_template(
            "web/login.html",
            error=error,
            ended=ended and not error,
            email=request.form.get("email", ""),
            next=safe_next(request.values.get("next")) or "",
        ),
        status=status,
        mimetype="text/html",
    )


@bp.get("/login")
def login() -> Response:
    """The sign-in page."""
    return render_login()


@bp.post("/login")
@login_rate_limits
def login_post() -> Response:
    """Sign in with the staff account; failures are audited and rate limited like the API's."""
    now = utcnow()
    email, password = request.form.get("email", ""), request.form.get("password", "")
    if not (is_storable(email) and is_storable(password)):
        # No account has such an address or password (the API's LoginSchema refuses them).
        return render_login(error=_("Wrong e-mail or password."), status=401)
    user = services.authenticate(email, password, now=now)
    if user is None:
        keep_on_error()  # keep the audit row of the failure
        return render_login(error=_("Wrong e-mail or password."), status=401)
    sign_in(user, now=now)
    return redirect(safe_next(request.form.get("next")) or url_for("web.queue"), code=303)  # type: ignore[return-value]


@bp.post("/logout")
@staff_page
def logout() -> Response:
    """Sign out: the session is revoked in the database, not only forgotten by the browser."""
    auth_session = current_auth_session()
    if auth_session is not None:
        services.end_session(auth_session, now=utcnow())
    forget()
    return redirect(url_for("web.login", signed_out=1), code=303)  # type: ignore[return-value]


@bp.post("/language")
def language() -> Response:
    """Switch the pages' language (kept in the session, before and after sign-in)."""
    chosen = request.form.get("language")
    if chosen in LOCALES:
        session[SESSION_LOCALE] = chosen
    back = safe_next(request.form.get("next")) or url_for("web.queue")
    return redirect(back, code=303)  # type: ignore[return-value]
