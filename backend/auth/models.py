"""Sites, staff users and sign-in sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import UUIDPrimaryKey
from backend.extensions import db
from backend.locales import FALLBACK_LOCALE

ROLES = ("nurse", "physician", "admin")


class Site(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A hospital IR department: staff and patients belong to exactly one site."""

    __tablename__ = "sites"

    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    locale: Mapped[str] = mapped_column(sa.String(2), default=FALLBACK_LOCALE)
    created_at: Mapped[datetime]


class User(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """A staff member. E-mails are stored lower-cased so that login is case-insensitive."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(f"role IN {ROLES}", name="role_known"),
        sa.CheckConstraint("locale IS NULL OR locale IN ('fr', 'en')", name="locale_known"),
    )

    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    site_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # The language of the texts the API returns to this person (alert summaries); null: the
    # request's Accept-Language, else the site's (backend/locales.py).
    locale: Mapped[str | None] = mapped_column(sa.String(2))

    site: Mapped[Site] = relationship(lazy="joined")


class AuthSession(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """One sign-in (a staff login or a patient device): the chain of its refresh tokens.

    Access tokens carry the session id, so revoking the session (logout, refresh-token reuse)
    stops its access tokens at once instead of at their expiry.
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (
        sa.CheckConstraint(
            "(user_id IS NULL) <> (patient_id IS NULL)", name="exactly_one_principal"
        ),
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(32))


class RefreshToken(UUIDPrimaryKey, db.Model):  # type: ignore[name-defined,misc]
    """An opaque refresh token, stored as its SHA-256 (it has 256 bits of entropy, so a slow
    hash adds nothing). Each use rotates it: ``used_at`` is set and a successor is issued."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    session: Mapped[AuthSession] = relationship(lazy="joined")
