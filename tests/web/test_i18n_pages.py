"""French and English: the browser's language, the switch, the catalogue, the site's clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from backend.alerts.models import OUTCOMES, SYSTEM_OUTCOMES
from backend.alerts.rules import ALERT_KINDS, SEVERITIES, SYMPTOMS
from backend.auth.services import get_or_create_site
from backend.extensions import db
from backend.patients import models as patients
from backend.questionnaires.models import ASSIGNMENT_STATUSES, SOURCES
from backend.web import i18n
from tests.conftest import T0, make_staff
from tests.factories import checkin_answers, make_patient, make_procedure, record
from tests.web.conftest import Pages

WEB = Path(i18n.__file__).resolve().parent
FRENCH = WEB / "translations" / "fr" / "LC_MESSAGES"


def test_a_french_browser_gets_french_pages(client, nurse_ada):
    pages = Pages(client, language="fr-FR,fr;q=0.9,en;q=0.5")
    pages.sign_in(nurse_ada)
    html = Pages.text(pages.get("/"))
    assert "File des alertes" in html and '<html lang="fr">' in html


def test_an_english_browser_gets_english_pages(ada_pages):
    assert "Alert queue" in Pages.text(ada_pages.get("/"))


def test_the_switch_wins_over_the_browser_and_stays_for_the_session(client, nurse_ada):
    pages = Pages(client, language="en")
    pages.sign_in(nurse_ada)
    response = pages.post("/language", {"language": "fr", "next": "/patients"})
    assert (response.status_code, response.headers["Location"]) == (303, "/patients")
    assert "Inscrire un patient" in Pages.text(pages.get("/patients"))
    assert "File des alertes" in Pages.text(pages.get("/"))


def test_without_a_browser_preference_the_pages_speak_the_sites_language(client, nurse_ada):
    pages = Pages(client, language="")
    pages.sign_in(nurse_ada)
    assert "File des alertes" in Pages.text(pages.get("/"))  # Lyon's language is French


def test_alert_summaries_follow_the_nurses_language(client, ward, nurse_ada):
    pages = Pages(client, language="fr")
    pages.sign_in(nurse_ada)
    assert ward.loosening.summary["fr"] in Pages.text(pages.get("/"))


def test_times_are_shown_on_the_clock_of_the_site(client, any_app, clock):
    """Léa works in Fort-de-France: an alert raised at 08:00 UTC was raised at 04:00 there."""
    get_or_create_site("FDF", now=T0, timezone="America/Martinique")
    lea = make_staff("lea@fdf.example", "nurse", "FDF")
    leonie = make_patient(lea, given_name="Léonie", timezone="America/Martinique")
    make_procedure(lea, leonie)
    record(leonie, T0 - timedelta(hours=1), answers=checkin_answers(call_request=True))
    db.session.commit()
    pages = Pages(client)
    pages.sign_in(lea)
    assert "23 Nov 2026, 04:00" in Pages.text(pages.get("/"))


def test_times_in_lyon_are_paris_time(ada_pages, ward):
    assert "23 Nov 2026, 09:00" in Pages.text(ada_pages.get("/"))  # 08:00 UTC in November


def _extracted() -> set[tuple[str | None, object]]:
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    keywords["lazy_pgettext"] = ((1, "c"), 2)
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(WEB), method_map, keywords=keywords
    ):
        found.add((context, message[0] if isinstance(message, tuple) else message))
    return found


def test_every_string_of_the_pages_has_a_french_translation():
    with open(FRENCH / "messages.po", "rb") as po:
        catalogue = read_po(po)
    translated = {
        (m.context, m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalogue
        if m.id and m.string and all(m.string) and not m.fuzzy
    }
    missing = sorted(_extracted() - translated, key=str)
    assert not missing, (
        f"translate these in {FRENCH / 'messages.po'} (make translations): {missing}"
    )


def _messages(catalogue) -> dict[tuple[str | None, object], object]:
    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    def context(value: str | bytes | None) -> str | None:  # read_mo gives bytes
        return value.decode() if isinstance(value, bytes) else value

    return {(context(m.context), plain(m.id)): plain(m.string) for m in catalogue if m.id}


def test_the_compiled_french_catalogue_is_the_current_one():
    with open(FRENCH / "messages.po", "rb") as po:
        source = _messages(read_po(po))
    mo_path = FRENCH / "messages.mo"
    if not mo_path.exists():
        pytest.fail("messages.mo is missing: run the tests with `make test`, which compiles it")
    with open(mo_path, "rb") as mo:
        compiled = _messages(read_mo(mo))
    assert compiled == source, "messages.mo is older than messages.po: `make test` recompiles it"


@pytest.mark.parametrize(
    ("vocabulary", "values"),
    [
        ("severity", SEVERITIES),
        ("alert_kind", ALERT_KINDS),
        ("outcome", OUTCOMES + SYSTEM_OUTCOMES),
        ("clinical_outcome", OUTCOMES),
        ("symptom", SYMPTOMS),
        ("assignment_status", ASSIGNMENT_STATUSES),
        ("source", SOURCES),
        ("patient_status", patients.PATIENT_STATUSES),
        ("status_cause", patients.STATUS_CAUSES),
        ("consent_purpose", patients.CONSENT_PURPOSES),
        ("consent_decision", patients.CONSENT_DECISIONS),
        ("consent_state", (*patients.CONSENT_DECISIONS, "none")),
        ("consent_method", patients.CONSENT_METHODS),
        ("procedure_kind", patients.PROCEDURE_KINDS),
        ("location", patients.LOCATIONS),
        ("side", patients.SIDES),
        ("etiology", patients.ETIOLOGIES),
        ("bone_quality", patients.BONE_QUALITIES),
        ("anaesthesia", patients.ANAESTHESIAS),
        ("analgesics", patients.ANALGESICS),
        ("walking_aid", patients.WALKING_AIDS),
        ("living_situation", patients.LIVING_SITUATIONS),
        ("sex", patients.SEXES),
        ("channel", patients.CHANNELS),
        ("language", patients.LOCALES),
    ],
)
def test_every_stored_value_has_words(vocabulary, values):
    assert set(i18n.LABELS[vocabulary]) == set(values)


def test_a_label_inside_a_part_forced_to_another_language_is_in_that_language(any_app):
    """The labels are remembered per request (a queue page asks for the same ones hundreds of
    times), but per language too: a part rendered in the patient's language inside a nurse's
    page (``force_locale``, the code sheet) must not get the nurse's words, nor leave its own."""
    from flask_babel import force_locale

    with any_app.test_request_context(headers={"Accept-Language": "en"}):
        with force_locale("en"):
            english = i18n.label("fever", "symptom")
        with force_locale("fr"):
            french = i18n.label("fever", "symptom")
        with force_locale("en"):
            again = i18n.label("fever", "symptom")
    assert english == again != french
    assert french == "fièvre", french


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_pages_shortcuts_give_what_flask_babel_gives(any_app, language):
    """The queue page's helpers take the request's locale and catalogue from where Flask-Babel
    keeps them (``i18n._locale``, ``i18n._gettext``) and format ``<time>`` without
    ``Markup.format``: each gives what Flask-Babel's and MarkupSafe's own calls give, in the
    request's language and inside a part forced to the other one."""
    from datetime import UTC, datetime

    from flask_babel import force_locale, get_locale, lazy_gettext
    from markupsafe import Markup

    other = "en" if language == "fr" else "fr"
    now = datetime(2026, 3, 29, 14, 5, 30, tzinfo=UTC)  # the day Paris moves to summer time
    ages = [timedelta(seconds=s) for s in (0, 59, 60, 89, 90, 3599, 3600, 86_400 * 3 + 5)]
    with any_app.test_request_context(headers={"Accept-Language": language}):

        def both() -> tuple[list[object], list[object]]:
            fast = [i18n._locale(), i18n.current_locale(), i18n._babel_locale()]
            slow = [get_locale(), str(get_locale()), get_locale()]
            for age in ages:
                fast.append(i18n.ago(now - age, now))
                words = i18n.format_age(age)
                slow.append(
                    str(lazy_gettext("just now"))
                    if age < timedelta(minutes=1)
                    else str(lazy_gettext("%(age)s ago", age=words))
                )
            for value in (now, now - timedelta(days=200)):
                fast.append(i18n.time_element(value))
                slow.append(
                    Markup('<time datetime="{}">{}</time>').format(
                        value.isoformat(), i18n.format_datetime(value)
                    )
                )
            fast.append(i18n._gettext("%(years)s years", years=81))
            slow.append(str(lazy_gettext("%(years)s years", years=81)))
            return fast, slow

        mine, theirs = both()
        with force_locale(other):
            forced, forced_theirs = both()
        again, _ = both()
    assert mine == theirs and forced == forced_theirs and again == mine
    assert mine[1] == language and forced[1] == other
    assert mine != forced  # the forced part is in the other language


def test_the_locale_shortcut_outside_an_application_is_flask_babels_none():
    from flask_babel import get_locale

    assert i18n._locale() is None and get_locale() is None  # not an error


def test_every_age_on_a_page_is_counted_to_the_same_day(any_app, clock):
    """The page's ages are counted to one "today" (read once per request, a queue page shows
    fifty): a page rendered across midnight does not age one patient and not the next."""
    from datetime import UTC, date, datetime

    born = date(1950, 3, 8)
    clock.set(datetime(2026, 3, 7, 22, 59, 59, tzinfo=UTC))  # 23:59:59 in Paris, the eve
    # A request of its own (its own ``g``), as each served request has.
    with any_app.app_context(), any_app.test_request_context():
        before = i18n.years_old(born)
        clock.set(datetime(2026, 3, 7, 23, 0, 1, tzinfo=UTC))  # the birthday, in Paris
        during = i18n.years_old(born)
    with any_app.app_context(), any_app.test_request_context():
        after = i18n.years_old(born)
    assert (before, during, after) == (75, 75, 76)
