"""The language of the texts the API returns to a staff caller (alert summaries, timelines).

One order everywhere: the staff member's own language when her account has one
(``User.locale``, set when the account is created), else the best of the request's
``Accept-Language``, else the site's language. The nurse pages put the header's language switch
before all of these (``backend.web.i18n.select_locale``).
"""

from __future__ import annotations

from flask import has_request_context, request

from backend.auth.models import Site
from backend.auth.principal import Principal
from backend.extensions import db

LOCALES = ("fr", "en")


def staff_locale(principal: Principal) -> str:
    """The staff member's language, else ``Accept-Language``'s best match, else the site's."""
    if principal.locale in LOCALES:
        return str(principal.locale)
    if has_request_context():
        best = request.accept_languages.best_match(LOCALES)
        if best:
            return str(best)
    site = db.session.get(Site, principal.site_id)
    return site.locale if site is not None and site.locale in LOCALES else "fr"
