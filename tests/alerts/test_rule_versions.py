"""Rule versions per site: an admin switches the active version (history kept, audited), a
candidate runs in shadow (stored, never shown, never notified), and the rule-quality report
compares the two on the same patients."""

from __future__ import annotations

from datetime import date

import pytest

from backend.alerts.models import Alert, AlertEvent, ShadowSignal, SiteRuleVersion
from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.notify.models import Notification
from backend.questionnaires.models import Assignment
from tests.alerts.test_alert_engine import DISCHARGE, alerts_of, walk
from tests.conftest import bearer, login, make_staff
from tests.factories import make_patient, make_procedure

# Henri, 90, sacroiliac screws, walking pain 9 before: 9, 8, 7, 9, 9. Version 1 stays silent;
# version 2 says "no lasting relief" on day 30.
HENRI = [(1, 9), (7, 8), (14, 7), (21, 9), (30, 9)]


@pytest.fixture
def henri(app, nurse_ada):
    patient = make_patient(nurse_ada, given_name="Henri", family_name="Martin")
    make_procedure(
        nurse_ada,
        patient,
        performed_on=date(2026, 11, 20),
        discharged_on=DISCHARGE,
        baseline={
            "pain_rest": 6,
            "pain_walking": 9,
            "mobility_score": 5,
            "analgesics": "weak_opioid",
            "walking_aid": "walker",
        },
    )
    return patient


@pytest.fixture
def marcel(app, nurse_ada):
    """Marcel, 86, sacroiliac screws, walking pain 8 before."""
    patient = make_patient(nurse_ada)
    make_procedure(nurse_ada, patient, performed_on=date(2026, 11, 20), discharged_on=DISCHARGE)
    return patient


@pytest.fixture
def admin_headers(client, app):
    """Dr Irène, admin at Lyon."""
    irene = make_staff("irene@lyon.example", "admin", "LYON")
    return bearer(login(client, irene)["access_token"])


def put_versions(client, headers, **body):
    return client.put("/api/v1/reports/rules/versions", json=body, headers=headers)


def test_a_shadow_candidate_that_would_alert_leaves_no_trace_a_nurse_can_see(
    client, henri, admin_headers, ada_headers
):
    reply = put_versions(
        client, admin_headers, active_version=1, candidate_version=2, reason="trial v2"
    )
    assert reply.status_code == 200, reply.get_json()
    assert (reply.get_json()["active_version"], reply.get_json()["candidate_version"]) == (1, 2)

    walk(henri, HENRI)

    # The candidate would have alerted: its signal is stored, as version 2's.
    [shadow] = db.session.execute(db.select(ShadowSignal)).scalars()
    assert (shadow.kind, shadow.rule_version) == ("possible_screw_loosening", 2)
    assert shadow.reasons[0]["code"] == "no_relief"
    # No alert, no history, no notification, no extra check-in asked by the candidate.
    assert alerts_of(henri) == []
    assert db.session.execute(db.select(AlertEvent)).first() is None
    assert db.session.execute(db.select(Notification)).first() is None
    confirmations = db.session.execute(
        db.select(Assignment).filter_by(patient_id=henri.id, reason="confirmation")
    ).first()
    assert confirmations is None
    # Nothing in the queue, the patient's page or timeline.
    queue = client.get("/api/v1/alerts", headers=ada_headers).get_json()
    assert queue["items"] == []
    for path in (f"/api/v1/patients/{henri.id}", f"/api/v1/patients/{henri.id}/timeline"):
        body = client.get(path, headers=ada_headers).get_data(as_text=True)
        assert "no_relief" not in body and "lasting relief" not in body

    # The comparison report shows what the candidate would have done.
    report = client.get("/api/v1/reports/rules", headers=ada_headers).get_json()
    [row] = report["comparison"]
    assert row["candidate_version"] == 2 and row["kind"] == "possible_screw_loosening"
    assert (row["patients_candidate"], row["patients_active"], row["candidate_only"]) == (1, 0, 1)
    assert report["items"] == []  # the active version's alerts: none


def test_a_replayed_history_stores_each_shadow_signal_once(client, henri, admin_headers):
    put_versions(client, admin_headers, active_version=1, candidate_version=2)
    walk(henri, HENRI)
    walk(henri, [(42, 9)])  # re-evaluates the whole history with the candidate again
    keys = db.session.execute(db.select(ShadowSignal.signal_key)).scalars().all()
    assert len(keys) == len(set(keys))


def test_switching_the_active_version_makes_new_alerts_carry_it_and_keeps_the_history(
    client, henri, admin_headers, ada_headers
):
    walk(henri, HENRI[:4])
    assert (
        put_versions(client, admin_headers, active_version=2, reason="adopted").status_code == 200
    )
    walk(henri, HENRI[4:])

    [alert] = alerts_of(henri)
    assert (alert.kind, alert.rule_version) == ("possible_screw_loosening", 2)
    assert "no lasting relief" in alert.summary["en"]
    assert db.session.execute(db.select(ShadowSignal)).first() is None  # no candidate now

    seen = client.get("/api/v1/reports/rules/versions", headers=ada_headers).get_json()
    assert seen["active_version"] == 2 and seen["candidate_version"] is None
    assert [h["reason"] for h in seen["history"]] == ["adopted"]
    assert seen["history"][0]["set_by"]["email"] == "irene@lyon.example"
    [audit] = db.session.execute(
        db.select(AuditEvent).filter_by(action="rules.set_versions")
    ).scalars()
    assert audit.details["active_version"] == 2 and audit.details["previous"] is None


def test_when_both_versions_alert_the_report_gives_the_candidates_lead_and_the_outcome(
    client, marcel, admin_headers, ada_headers
):
    # Marcel settles at 2, then on day 42 walks at 5/10 and feels much worse. Version 1 asks for
    # a confirmation and alerts on day 45; version 2 (shadow) counts "much worse" as
    # corroboration and would have alerted on day 42.
    put_versions(client, admin_headers, active_version=1, candidate_version=2)
    walk(marcel, [(1, 6), (7, 2), (14, 2), (21, 2)])
    walk(marcel, [(42, 5)], change="much_worse")
    walk(marcel, [(45, 5)])
    loosening = [a for a in alerts_of(marcel) if a.kind == "possible_screw_loosening"]
    [alert] = loosening
    assert alert.rule_version == 1
    reply = client.post(
        f"/api/v1/alerts/{alert.id}/resolve",
        json={"outcome": "loosening_confirmed"},
        headers=ada_headers,
    )
    assert reply.status_code == 200, reply.get_json()

    report = client.get("/api/v1/reports/rules", headers=ada_headers).get_json()
    rows = {r["kind"]: r for r in report["comparison"]}
    row = rows["possible_screw_loosening"]
    assert (row["patients_both"], row["candidate_only"], row["active_only"]) == (1, 0, 0)
    assert row["median_lead_days"] == 3.0
    assert row["outcomes_candidate_agreed"] == {"loosening_confirmed": 1}
    assert row["active_versions"] == [1]
    # Version 1 also raised a routine worsening alert for "much worse"; version 2 folded it
    # into the loosening signal, so the report shows it as the active version's alone.
    assert (rows["worsening"]["patients_active"], rows["worsening"]["patients_candidate"]) == (
        1,
        0,
    )


def test_only_an_admin_switches_versions_and_bad_versions_are_named(
    client, app, admin_headers, ada_headers
):
    refused = put_versions(client, ada_headers, active_version=2)
    assert refused.status_code == 403
    bad = put_versions(client, admin_headers, active_version=9, candidate_version=9)
    assert bad.status_code == 422
    pointers = {e["pointer"] for e in bad.get_json()["errors"]}
    assert pointers == {"/active_version", "/candidate_version"}
    same = put_versions(client, admin_headers, active_version=2, candidate_version=2)
    assert [e["pointer"] for e in same.get_json()["errors"]] == ["/candidate_version"]
    assert db.session.execute(db.select(SiteRuleVersion)).first() is None


def test_flask_rules_set_version_switches_a_site_with_history(runner, nurse_ada):
    result = runner.invoke(
        args=["rules", "set-version", "--site", "LYON", "--active", "1", "--candidate", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "candidate 2 in shadow" in result.output
    bad = runner.invoke(args=["rules", "set-version", "--site", "LYON", "--active", "7"])
    assert bad.exit_code != 0 and "/active_version" in bad.output
    rows = db.session.execute(db.select(SiteRuleVersion)).scalars().all()
    assert [(r.active_version, r.candidate_version) for r in rows] == [(1, 2)]
    assert db.session.execute(db.select(Alert)).first() is None
