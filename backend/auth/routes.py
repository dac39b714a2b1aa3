"""Staff authentication: login, refresh, logout."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.auth import services
from backend.auth.guards import current_staff, site_scoped, staff_required
from backend.auth.models import Site, User
from backend.auth.schemas import (
    LoginSchema,
    RefreshSchema,
    TokenPairSchema,
    UserCreateSchema,
    UserListSchema,
    UserSchema,
)
from backend.auth.throttle import login_rate_limits
from backend.clock import utcnow
from backend.errors import Unauthorized, problems
from backend.extensions import db
from backend.uow import keep_on_error

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff authentication")
PUBLIC: dict[str, Any] = {"security": []}


@blp.route("/login")
class Login(MethodView):
    @login_rate_limits
    @blp.doc(**PUBLIC)
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @problems(blp, 401, 429)
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Sign in with e-mail and password"""
        now = utcnow()
        user = services.authenticate(body["email"], body["password"], now=now)
        if user is None:
            keep_on_error()  # keep the audit row of the failure
            raise Unauthorized("Wrong e-mail or password.")
        issued = services.start_staff_session(user, now=now)
        return _token_pair(issued, user)


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.doc(**PUBLIC)
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @problems(blp, 401)
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Exchange a refresh token for a new pair (the old one stops working)"""
        try:
            issued = services.refresh(body["refresh_token"], now=utcnow())
        except services.RefreshReuse:
            keep_on_error()  # the revocation of the whole chain must stick
            raise
        user = db.session.get(User, issued.principal.id) if issued.principal.is_staff else None
        return _token_pair(issued, user)


@blp.route("/logout")
class Logout(MethodView):
    @blp.doc(**PUBLIC)
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body: dict[str, str]) -> None:
        """Sign out: the refresh token's session is revoked, with its access tokens"""
        services.logout(body["refresh_token"], now=utcnow())


def _token_pair(issued: services.IssuedTokens, user: User | None) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    }
    if user is not None:
        pair["user"] = user
    return pair


users_blp = Blueprint(
    "users",
    __name__,
    url_prefix="/api/v1/users",
    description="Staff accounts of the caller's site (admins)",
)


@users_blp.route("")
class Users(MethodView):
    @staff_required("admin")
    @users_blp.response(200, UserListSchema)
    @problems(users_blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """List the staff of the caller's site"""
        principal = current_staff()
        users = (
            db.session.execute(
                db.select(User).filter_by(site_id=principal.site_id).order_by(User.email)
            )
            .scalars()
            .all()
        )
        return {"items": users, "next_cursor": None}

    @staff_required("admin")
    @users_blp.arguments(UserCreateSchema)
    @users_blp.response(201, UserSchema)
    @problems(users_blp, 401, 403, 409)
    def post(self, body: dict[str, Any]) -> User:
        """Create a staff account at the caller's site"""
        principal = current_staff()
        site = db.session.get(Site, principal.site_id)
        assert site is not None
        user = services.create_user(
            body["email"],
            body["password"],
            body["role"],
            site,
            now=utcnow(),
            full_name=body["full_name"],
            locale=body["locale"],
        )
        return user


@users_blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @staff_required("admin")
    @users_blp.response(200, UserSchema)
    @problems(users_blp, 401, 403, 404)
    def get(self, user_id: uuid.UUID) -> User:
        """One staff member of the caller's site (another site's answers 404)"""
        return site_scoped(User, user_id, current_staff())
