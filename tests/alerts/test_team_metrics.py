"""The team metrics against a fixture computed by hand (the expected figures are written out
below, not computed by the code under test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.alerts.metrics import percentile
from tests.alerts.test_nurse_workflow import make_alert, signed_in
from tests.factories import make_patient

H = 3600.0
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # week 1 starts; week 2 starts a week later
NOW = MONDAY + timedelta(days=7, hours=12)  # Monday of week 2, noon


@pytest.fixture
def team_week(nurse_ada, nurse_noe, clock):
    """Two Lyon patients followed from the first Monday 00:00; Nantes' alert must not count."""
    anne = make_patient(nurse_ada, MONDAY, mrn="M-1")
    bob = make_patient(nurse_ada, MONDAY, mrn="M-2")
    t = MONDAY + timedelta(days=1, hours=8)  # Tuesday 08:00 of week 1
    # Four high alerts: acknowledged after 1, 2, 3 and 30 hours (the last one past its 24 h
    # target), resolved after 2, 4, 6 and 40 hours; two false alarms.
    for n, (ack, res, outcome, version) in enumerate(
        [
            (1, 2, "false_alarm", 1),
            (2, 4, "advice_given", 1),
            (3, 6, "false_alarm", 1),
            (30, 40, "advice_given", 2),
        ]
    ):
        make_alert(
            nurse_ada,
            "high",
            t + timedelta(minutes=n),
            patient=anne if n % 2 else bob,
            status="resolved",
            rule_version=version,
            acknowledged_at=t + timedelta(minutes=n, hours=ack),
            acknowledged_by_id=nurse_ada.id,
            resolved_at=t + timedelta(minutes=n, hours=res),
            resolved_by_id=nurse_ada.id,
            outcome=outcome,
        )
    # Routine: one never acknowledged, overdue by now (72 h target); one resolved by the
    # system (answered late): neither a nurse's time to resolve nor a false alarm.
    make_alert(nurse_ada, "routine", t, patient=anne)
    make_alert(
        nurse_ada,
        "routine",
        t,
        kind="no_response",
        patient=bob,
        status="resolved",
        resolved_at=t + timedelta(hours=5),
        outcome="answered_late",
    )
    # Week 2: an urgent alert acknowledged after 30 minutes.
    make_alert(
        nurse_ada,
        "urgent",
        NOW - timedelta(hours=6),
        patient=anne,
        status="acknowledged",
        acknowledged_at=NOW - timedelta(hours=5, minutes=30),
        acknowledged_by_id=nurse_ada.id,
    )
    # Out of the figures: before the period, and another site's.
    make_alert(nurse_ada, "routine", MONDAY - timedelta(days=3), kind="worsening", patient=bob)
    make_alert(nurse_noe, "urgent", t)
    clock.set(NOW)


def by_severity(rows):
    return {row["severity"]: row for row in rows}


def test_the_percentiles_interpolate_between_the_closest_ranks():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5) == pytest.approx(5.5)
    assert percentile([7], 0.9) == 7 and percentile([], 0.5) is None


def test_the_team_metrics_match_the_figures_computed_by_hand(client, nurse_ada, team_week):
    response = client.get("/api/v1/reports/team?weeks=2", headers=signed_in(client, nurse_ada))
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["since"] == MONDAY.isoformat() and report["until"] == NOW.isoformat()
    first, second = report["weeks"]
    assert first["week_start"] == MONDAY.isoformat()
    assert (first["alerts"], second["alerts"]) == (6, 1)
    # Two patients the whole first week; half a day each in the second (12 h / 168 h).
    assert first["patient_weeks"] == 2.0
    assert second["patient_weeks"] == pytest.approx(0.143, abs=1e-3)

    high = by_severity(first["by_severity"])["high"]
    # Acknowledged after 1, 2, 3, 30 h: median (2 + 3) / 2 = 2.5 h; the 90th percentile at
    # rank 0.9 x 3 = 2.7: 3 h + 0.7 x (30 - 3) h = 21.9 h.
    assert high["median_seconds_to_acknowledge"] == pytest.approx(2.5 * H)
    assert high["p90_seconds_to_acknowledge"] == pytest.approx(21.9 * H)
    # Resolved after 2, 4, 6, 40 h: median 5 h; 6 h + 0.7 x 34 h = 29.8 h.
    assert high["median_seconds_to_resolve"] == pytest.approx(5 * H)
    assert high["p90_seconds_to_resolve"] == pytest.approx(29.8 * H)
    assert (high["alerts"], high["acknowledged"], high["resolved"]) == (4, 4, 4)
    assert high["overdue_share"] == 0.25  # one of four acknowledged after its target

    routine = by_severity(first["by_severity"])["routine"]
    assert (routine["alerts"], routine["acknowledged"], routine["resolved"]) == (2, 0, 0)
    assert routine["median_seconds_to_resolve"] is None  # the system's resolution is not ours
    assert routine["overdue_share"] == 0.5
    assert by_severity(first["by_severity"])["urgent"]["alerts"] == 0
    assert first["false_alarm_share"] == 0.5  # two of the four a nurse resolved

    assert {(r["kind"], r["rule_version"]): r["per_100_patient_weeks"] for r in first["rates"]} == {
        ("possible_screw_loosening", 1): 150.0,  # 3 alerts / 2 patient-weeks x 100
        ("possible_screw_loosening", 2): 50.0,
        ("call_request", 1): 50.0,
        ("no_response", 1): 50.0,
    }
    urgent = by_severity(second["by_severity"])["urgent"]
    assert urgent["median_seconds_to_acknowledge"] == urgent["p90_seconds_to_acknowledge"] == 1800
    assert urgent["overdue_share"] == 0.0
    assert second["rates"] == [
        {"kind": "red_flag", "rule_version": 1, "alerts": 1, "per_100_patient_weeks": 700.0}
    ]  # 1 / (1 / 7) x 100

    totals = report["totals"]
    assert totals["alerts"] == 7 and totals["patient_weeks"] == pytest.approx(2.143, abs=1e-3)
    rates = {(r["kind"], r["rule_version"]): r["per_100_patient_weeks"] for r in totals["rates"]}
    assert rates[("possible_screw_loosening", 1)] == 140.0  # 3 / (15 / 7) x 100
    assert rates[("red_flag", 1)] == 46.67
    assert totals["false_alarm_share"] == 0.5


def test_another_sites_nurse_sees_only_her_sites_figures(client, nurse_noe, team_week):
    report = client.get(
        "/api/v1/reports/team?weeks=2", headers=signed_in(client, nurse_noe)
    ).get_json()
    assert report["totals"]["alerts"] == 1
    # Her one patient, registered on the first Monday at 09:00: 7 days and 3 hours, 171 / 168.
    assert report["totals"]["patient_weeks"] == pytest.approx(171 / 168, abs=1e-3)
