"""The language of the texts the API returns to a staff caller (alert summaries, timelines).

The nurse pages choose theirs in ``backend.web.i18n.select_locale`` (the switch in the header,
then the browser's ``Accept-Language``, then the site's language); the API follows the same
order without the switch: ``Accept-Language``, then the site's language. Staff accounts carry no
language of their own yet; when they do, it goes first here and in ``select_locale``.
"""

from __future__ import annotations

from flask import has_request_context, request

from backend.auth.models import Site
from backend.auth.principal import Principal
from backend.extensions import db

LOCALES = ("fr", "en")


def staff_locale(principal: Principal) -> str:
    """``Accept-Language``'s best match among ``LOCALES``, else the caller's site's language."""
    if has_request_context():
        best = request.accept_languages.best_match(LOCALES)
        if best:
            return str(best)
    site = db.session.get(Site, principal.site_id)
    return site.locale if site is not None and site.locale in LOCALES else "fr"
