"""The physician's research page: figures drawn by matplotlib, each with its table of values."""

from __future__ import annotations

import base64
import re

import pytest

from backend.audit.models import AuditEvent
from backend.extensions import db
from tests.research.conftest import patient_with
from tests.web.conftest import Pages


@pytest.fixture
def research_cohort(nurse_ada):
    for walking in (6, 6, 7, 7, 6):
        patient_with(nurse_ada, "cementoplasty", walking)
    for walking in (3, 2, 4, 3, 3):
        patient_with(nurse_ada, "screw_fixation_cementoplasty", walking)


@pytest.fixture
def leon_pages(pages: Pages, physician_leon) -> Pages:
    assert pages.sign_in(physician_leon).status_code == 303
    return pages


def images(html: str) -> list[str]:
    return [
        base64.b64decode(m).decode()
        for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    ]


def test_the_physician_sees_four_figures_each_with_its_table(leon_pages, research_cohort):
    response = leon_pages.get("/research?group=kind&outcome=pain_walking&time_point=month_1")
    assert response.status_code == 200
    html = Pages.text(response)
    svgs = images(html)
    assert len(svgs) == 4 and all(s.lstrip().startswith("<?xml") and "<svg" in s for s in svgs)
    assert html.count("<table>") >= 4
    # The trajectory table carries the hand-computed mean change of cement alone (-1.60).
    assert "-1.60" in html and "-5.00" in html
    # The forest table: all patients, cement plus screws minus alone, -3.40.
    assert "-3.40" in html
    assert "Marcel" not in html  # no patient is named on a research page
    event = db.session.execute(
        db.select(AuditEvent).filter_by(action="research.outcomes.read")
    ).scalar_one()
    assert event.details["group"] == "kind"


def test_the_page_speaks_french(client, physician_leon, research_cohort):
    pages = Pages(client, language="fr")
    pages.sign_in(physician_leon)
    html = Pages.text(pages.get("/research"))
    assert "Trajectoires par groupe" in html and "Complétude" in html


def test_nurses_are_refused_the_research_page(ada_pages):
    response = ada_pages.get("/research")
    assert response.status_code == 403
    assert 'href="/research"' not in Pages.text(ada_pages.get("/"))


@pytest.mark.parametrize(
    "group", ["kind", "etiology", "location", "bone_quality", "anaesthesia", "arm", "age_band"]
)
def test_every_grouping_renders(leon_pages, research_cohort, group):
    response = leon_pages.get(f"/research?group={group}&outcome=mobility_score")
    assert response.status_code == 200, Pages.text(response)[-500:]
    assert len(images(Pages.text(response))) == 4
