"""The outcome report on a small cohort whose numbers are worked out by hand below.

Fifteen Lyon patients discharged on 2026-10-01, baseline walking pain 8, all with research
consent; on 2026-11-23 (day 53) the month-1 window (days 21-45) has closed:
- cement alone (cementoplasty), five answer on day 30 with walking pain 6, 6, 7, 7, 6:
  changes -2, -2, -1, -1, -2; mean -1.6; SD sqrt(1.2 / 4) = 0.5477; 95 % CI
  -1.6 +/- t(0.975, 4) 2.776 x 0.5477 / sqrt(5) = (-2.280, -0.920). Nobody improves by 30 %.
- cement plus screws, five answer on day 30 with 3, 2, 4, 3, 3: changes -5, -6, -4, -5, -5;
  mean -5, variance 0.5. All five are responders (>= 3 points, >= 30 %).
- five more cement patients never answer: missing, never imputed.
Difference (plus screws minus alone) -5 - (-1.6) = -3.4; SE sqrt(0.3/5 + 0.5/5) = 0.4;
Welch df 0.16^2 / ((0.06^2 + 0.1^2) / 4) = 7.529.
Responders 5 of 10 assessed: Wilson 0.2366-0.7634. Completeness 10 of 15 expected: Wilson
0.4171-0.8482.
Patients who must change nothing: one without consent, one who withdrew on day 25 (her
day-30 answer of 0 is after the cut), one at Nantes.
"""

from __future__ import annotations

from datetime import date

from scipy import stats as scipy_stats

from backend.audit.models import AuditEvent
from backend.extensions import db
from backend.research.services import included_patients
from tests.conftest import bearer, login
from tests.research.conftest import patient_with, withdraw_research_consent


def month_1(block):
    return next(tp for tp in block["time_points"] if tp["time_point"] == "month_1")


def test_the_report_gives_the_hand_computed_changes_intervals_and_difference(
    client, cohort, leon_headers
):
    response = client.get("/api/v1/research/outcomes?group=kind", headers=leon_headers)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["patients"] == 16  # 15 + the one who withdrew (her data before day 25)
    groups = {g["value"]: g for g in report["groups"]}
    assert set(groups) == {"cementoplasty", "screw_fixation_cementoplasty"}
    cement = month_1(groups["cementoplasty"])["outcomes"]["pain_walking"]["change"]
    assert cement["n"] == 5
    assert round(cement["mean"], 3) == -1.6
    assert (round(cement["low"], 3), round(cement["high"], 3)) == (-2.280, -0.920)
    screws = month_1(groups["screw_fixation_cementoplasty"])["outcomes"]["pain_walking"]
    assert round(screws["change"]["mean"], 6) == -5
    assert round(screws["value"]["mean"], 6) == 3

    first = report["comparison"]["overall"][0]
    assert first["time_point"] == "month_1"
    assert (first["n_a"], first["n_b"]) == (5, 5)
    assert round(first["difference"], 6) == -3.4
    half = scipy_stats.t.ppf(0.975, 0.16**2 / ((0.06**2 + 0.1**2) / 4)) * 0.4
    assert round(first["low"], 6) == round(-3.4 - half, 6)
    assert round(first["high"], 6) == round(-3.4 + half, 6)


def test_responders_and_completeness_carry_wilson_intervals(client, cohort, leon_headers):
    report = client.get("/api/v1/research/outcomes", headers=leon_headers).get_json()
    m1 = month_1(report["overall"])
    assert m1["responders"]["k"] == 5 and m1["responders"]["n"] == 10
    assert (round(m1["responders"]["low"], 4), round(m1["responders"]["high"], 4)) == (
        0.2366,
        0.7634,
    )
    # 16 expected: the 15, and the one who withdrew on day 25 (after the window opened).
    assert m1["completeness"]["n"] == 16 and m1["completeness"]["k"] == 10
    month_3 = next(tp for tp in report["overall"]["time_points"] if tp["time_point"] == "month_3")
    assert month_3["completeness"]["n"] == 0  # window still open on day 53: nothing expected yet
    assert month_3["outcomes"]["pain_walking"]["value"]["n"] == 0


def test_wilson_completeness_interval_of_ten_of_fifteen_by_hand():
    from backend.research.stats import wilson

    p = wilson(10, 15)
    assert (round(p.low, 4), round(p.high, 4)) == (0.4171, 0.8482)


def test_a_withdrawn_patients_data_stops_at_the_withdrawal_and_unconsented_are_left_out(
    app, cohort, nurse_ada
):
    inclusions = included_patients(nurse_ada.site_id)
    included = {inc.patient.given_name: inc for inc in inclusions}
    assert "Sans-consentement" not in included and "Nantais" not in included
    assert included["Retrait"].cut_from == date(2026, 10, 26)
    assert included["Marcel"].cut_from is None
    assert len(inclusions) == 16


def test_a_consent_withdrawn_the_day_it_was_given_includes_nothing(app, nurse_ada):
    patient = patient_with(nurse_ada, "cementoplasty", 5, name="Aussitôt")
    withdraw_research_consent(patient, date(2026, 9, 29))
    assert included_patients(nurse_ada.site_id) == []


def test_small_groups_show_less_than_five(client, cohort, leon_headers):
    report = client.get(
        "/api/v1/research/outcomes?group=kind&kind=screw_fixation_cementoplasty&outcome=pain_rest",
        headers=leon_headers,
    ).get_json()
    assert report["patients"] == 5
    report = client.get("/api/v1/research/outcomes?group=age_band", headers=leon_headers).get_json()
    assert [g["value"] for g in report["groups"]] == ["85+"]


def test_grouping_with_fewer_than_five_in_a_group_masks_it(client, nurse_ada, leon_headers):
    for walking in (3, 4, 5):
        patient_with(nurse_ada, "cementoplasty", walking)
    report = client.get("/api/v1/research/outcomes", headers=leon_headers).get_json()
    assert report["patients"] == "<5"
    assert report["groups"][0]["patients"] == "<5"
    assert report["groups"][0]["time_points"] == []
    assert report["overall"] is None
    assert "3" not in str(report["groups"])


def test_another_sites_physician_sees_none_of_lyons_patients(client, cohort, physician_nadia):
    headers = bearer(login(client, physician_nadia)["access_token"])
    report = client.get("/api/v1/research/outcomes", headers=headers).get_json()
    # Nantes has one consented patient of its own (screws); none of Lyon's sixteen.
    assert report["patients"] == "<5"
    assert [g["value"] for g in report["groups"]] == ["screw_fixation_cementoplasty"]


def test_nurses_are_refused_and_every_read_is_audited(client, cohort, ada_headers, leon_headers):
    assert client.get("/api/v1/research/outcomes", headers=ada_headers).status_code == 403
    client.get("/api/v1/research/outcomes?group=etiology", headers=leon_headers)
    event = db.session.execute(
        db.select(AuditEvent).filter_by(action="research.outcomes.read")
    ).scalar_one()
    assert event.actor_role == "physician" and event.details["group"] == "etiology"


def test_an_unknown_group_is_a_problem_naming_the_parameter(client, leon_headers):
    response = client.get("/api/v1/research/outcomes?group=shoe_size&kind=x", headers=leon_headers)
    assert response.status_code == 422
    named = {e["parameter"] for e in response.get_json()["errors"]}
    assert named == {"group", "kind"}
