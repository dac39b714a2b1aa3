"""The languages: which exist, which one stands in for a missing text, and a staff caller's.

``LOCALES`` and ``FALLBACK_LOCALE`` are decided here once; every table of texts in two languages
(the rules' reasons, the outbox's messages, instruments, the emergency advice, stored alert
summaries) picks its text with ``pick``. This part imports nothing of the application, so pure
modules (the rules) use it too.

A staff caller's language (alert summaries, timelines), one order everywhere: the staff member's
own language when her account has one (``User.locale``, set when the account is created), else
the best of the request's ``Accept-Language``, else the site's language. The nurse pages put the
header's language switch before all of these (``backend.web.i18n.select_locale``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from werkzeug.datastructures import Accept

if TYPE_CHECKING:
    from backend.auth.models import Site
    from backend.auth.principal import Principal

LOCALES = ("fr", "en")
FALLBACK_LOCALE = "fr"  # the sites' language: a text missing in the caller's is shown in it

T = TypeVar("T")


def pick(texts: Mapping[str, T], locale: str | None) -> T:
    """``texts[locale]``, else the French one (``KeyError`` when neither exists)."""
    found = texts.get(locale) if locale else None
    return found if found else texts[FALLBACK_LOCALE]


def known(locale: str | None) -> str:
    """``locale`` when it is one of ``LOCALES``, else the fallback."""
    return locale if locale in LOCALES else FALLBACK_LOCALE  # type: ignore[return-value]


def accepted_locale(accept: Accept) -> str | None:
    """The one of ``LOCALES`` an ``Accept-Language`` header prefers, by quality, a language range
    standing for its primary language (``en-GB`` asks for ``en``); None when it asks for none.

    Not werkzeug's ``best_match``: it takes an exact match of any quality before a regional
    range of a higher one, so ``en-GB, fr;q=0.9`` came out French."""
    primaries = Accept([(re.split(r"[-_]", value, maxsplit=1)[0], q) for value, q in accept])
    return primaries.best_match(LOCALES)


def site_locale(site: Site | None) -> str:
    """A site's language (the fallback when there is no site)."""
    return known(site.locale if site is not None else None)


def staff_locale(principal: Principal) -> str:
    """The staff member's language, else ``Accept-Language``'s best match, else the site's."""
    from flask import has_request_context, request

    from backend.auth.models import Site
    from backend.extensions import db

    if principal.locale in LOCALES:
        return str(principal.locale)
    if has_request_context():
        best = accepted_locale(request.accept_languages)
        if best:
            return str(best)
    if principal.site_locale is not None:  # read with the session (``load_session``)
        return known(principal.site_locale)
    return site_locale(db.session.get(Site, principal.site_id))
