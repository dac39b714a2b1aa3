"""Who is making the request: a staff member or an enrolled patient device."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import g


@dataclass(frozen=True)
class Principal:
    kind: str  # "staff" | "patient"
    id: uuid.UUID
    site_id: uuid.UUID
    session_id: uuid.UUID
    role: str  # nurse | physician | admin | patient
    # A staff member's own language when signed in (read with the user, so no request reads
    # the user again to choose the language of its answer).
    locale: str | None = None
    # The site's language, read with the user and the site in the statement that checks the
    # session, for the callers whose own language is not known (``backend.locales``).
    site_locale: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_patient(self) -> bool:
        return self.kind == "patient"


def current_principal() -> Principal | None:
    principal: Principal | None = g.get("principal")
    return principal
