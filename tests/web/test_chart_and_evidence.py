"""The trajectory chart's geometry and reference points, and an alert's evidence in words."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from types import SimpleNamespace

import pytest

from backend.alerts.rules import _THRESHOLDS, ResponseFacts, _Tracker
from backend.alerts.rules import walking_nadir as nadir_of
from backend.alerts.services import procedure_facts
from backend.web.chart import FLAG_GAP, build_chart
from backend.web.evidence import describe, reason

DISCHARGED = date(2026, 10, 1)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def procedure(**overrides):
    values = {
        "kind": "screw_fixation",
        "discharged_on": DISCHARGED,
        "baseline_pain_walking": 8,
        "baseline_pain_rest": 6,
        "baseline_mobility_score": 6,
        "baseline_analgesics": "weak_opioid",
        "baseline_walking_aid": "walker",
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def response(day: int, walking: int, rest: int = 2, mobility: int | None = None):
    answered = datetime(2026, 10, 1, 9, tzinfo=UTC) + timedelta(days=day)
    return SimpleNamespace(
        id=uuid.uuid4(),
        day=day,
        answered_at=answered,
        instrument_key="followup" if mobility is not None else "checkin",
        answers={"pain_walking": walking, "pain_rest": rest},
        scores={"mobility_score": mobility},
    )


def alert(kind: str, severity: str, opened_by=None, created_at: datetime = NOW):
    return SimpleNamespace(
        id=uuid.uuid4(),
        kind=kind,
        severity=severity,
        status="open",
        opened_by_response_id=opened_by.id if opened_by else None,
        created_at=created_at,
    )


def test_nadir_is_the_lowest_mean_of_two_reports_in_a_row_the_earliest_on_a_tie():
    assert nadir_of([]) is None
    assert nadir_of([(1, 5)]) == (Fraction(5), (0,))
    assert nadir_of([(1, 6), (7, 1), (14, 5), (21, 2), (28, 2)]) == (Fraction(2), (3, 4))
    assert nadir_of([(1, 3), (7, 3), (14, 3)]) == (Fraction(3), (0, 1))
    # A single low report among high ones is noise, not the best settled level.
    assert nadir_of([(1, 6), (7, 0), (14, 6)]) == (Fraction(3), (0, 1))


@pytest.mark.parametrize("seed", range(20))
def test_the_charts_nadir_is_the_alert_rules_nadir(seed):
    """Cross-check against the rules' own reference points on random histories."""
    rng = random.Random(seed)
    pains = [rng.randint(0, 10) for _ in range(rng.randint(1, 12))]
    tracker = _Tracker(procedure_facts(procedure()))
    for i, pain in enumerate(pains):
        tracker.add(
            ResponseFacts(
                id=f"r{i:02d}",
                answered_at=NOW + timedelta(days=i),
                day=i,
                pain_walking=pain,
                pain_rest=0,
                analgesic_step=1,
                aid_level=1,
                fell=False,
                symptoms=frozenset(),
                change="no_change",
                call_request=False,
                mobility_score=None,
            )
        )
    rules_nadir = tracker.reference().nadir
    value, indexes = nadir_of(list(enumerate(pains)))
    assert value == rules_nadir.value
    assert [f"r{i:02d}" for i in indexes] == [r.id for r in rules_nadir.responses]


def test_the_chart_marks_the_baseline_the_nadir_and_each_alert_at_its_day():
    history = [response(1, 6), response(7, 3), response(14, 2), response(21, 2, mobility=5)]
    relapse = response(45, 6)
    history.append(relapse)
    loosening = alert("possible_screw_loosening", "high", opened_by=relapse)
    missed = alert("no_response", "routine", created_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
    chart = build_chart(procedure(), history, [missed, loosening], now=NOW, timezone="Europe/Paris")
    walking = chart.series_by_key("walking")
    assert [p.day for p in walking.points] == [1, 7, 14, 21, 45]
    assert walking.baseline.value == 8 and walking.baseline.x < chart.x_ticks[0].position
    assert [p.day for p in chart.series_by_key("mobility").points] == [21]
    assert (chart.nadir.value, chart.nadir.days) == (Fraction(2), (14, 21))
    assert [(m.kind, m.day, m.number) for m in chart.alerts] == [
        ("no_response", 32, 1),
        ("possible_screw_loosening", 45, 2),
    ]
    assert chart.today_day == 53 and chart.max_day >= 53
    # Higher values are higher on the page (SVG's y grows downwards).
    assert walking.points[0].y < walking.points[2].y


def test_alert_flags_of_one_day_do_not_cover_each_other():
    same_day = response(10, 7)
    alerts = [alert("red_flag", "urgent", same_day), alert("call_request", "high", same_day)]
    chart = build_chart(procedure(), [same_day], alerts, now=NOW, timezone="Europe/Paris")
    first, second = chart.alerts
    assert first.x == second.x and second.flag_x - first.flag_x >= FLAG_GAP


def test_the_highlighted_alert_is_the_one_of_the_page():
    relapse = response(45, 6)
    this = alert("possible_screw_loosening", "high", opened_by=relapse)
    chart = build_chart(
        procedure(), [relapse], [this], now=NOW, timezone="Europe/Paris", highlight=this.id
    )
    assert chart.alerts[0].highlighted


# --- evidence in words -------------------------------------------------------------------------

DETAILS = {
    "pain_walking": 6,
    "nadir": 2,
    "routes": ["rise", "baseline"],
    "baseline_pain_walking": 6,
    "confirmed": True,
    "immediate": False,
    "symptoms": ["clicking"],
    "mobility_score": 3,
    "best_mobility": 6,
    "source": "response",
    "day": 14,
    "previous_pain_walking": 2,
    "previous_aid_level": 1,
    "aid_level": 5,
    "best_aid_level": 1,
    "analgesic_step": 2,
    "lowest_analgesic_step": 1,
    "change": "much_worse",
    "missed": [{"day": 30, "assignment_id": "a", "closes_at": "2026-11-01T09:00:00+00:00"}],
}


@pytest.mark.parametrize("code", sorted(_THRESHOLDS))
def test_every_reason_the_rules_can_give_has_words(app, code):
    with app.test_request_context():
        text = reason(code, DETAILS)
    assert text != code and "%(" not in text


def test_an_alerts_evidence_reads_as_sentences(app, ward):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        [first, *_] = describe(ward.loosening.evidence)
    assert first.day == 22
    assert "walking pain 6/10" in first.reported and "symptoms: clicking" in first.reported
    assert first.reasons[0].startswith("Mechanical sign (clicking) with walking pain 6/10")
    assert first.references[0] == "best settled walking pain (nadir) 2/10, days 14, 21"
    assert first.rule == "rule possible_screw_loosening, version 1"


def test_an_alerts_evidence_reads_in_french_from_the_rules_wording(app, ward):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        [first, *_] = describe(ward.loosening.evidence)
    assert first.reasons[0].startswith(
        "Signe mécanique (claquement) avec une douleur à la marche de 6/10"
    )
    assert first.references[0] == "meilleure douleur à la marche stable (nadir) 2/10, jours 14, 21"
    assert first.rule == "règle possible_screw_loosening, version 1"


def test_every_french_phrase_of_the_evidence_takes_the_english_ones_numbers():
    import re

    from backend.alerts.wording import _EVIDENCE_FR

    for english, french in _EVIDENCE_FR.items():
        assert sorted(re.findall(r"%\(\w+\)s", english)) == sorted(
            re.findall(r"%\(\w+\)s", french)
        ), english
