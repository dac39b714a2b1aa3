"""The rules simulation (backend/alerts/simulation.py, docs/simulation.md): the cohort follows
its published parameters, runs the real engine with its confirmation check-ins, and a seed
gives the same figures."""

import json
import statistics
from typing import Any

import pytest

from backend.alerts.rules import RULES_V1, RULES_V2
from backend.alerts.simulation import (
    CANDIDATE_PROTOCOL_DIR,
    Parameters,
    draw_patient,
    follow,
    load_protocol,
    parameters_with,
    protocols_from,
    simulate,
    true_pain,
)

SEED = 20261201


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_patients() -> None:
    first = simulate({"1": RULES_V1}, seed=SEED, patients=150)
    assert simulate({"1": RULES_V1}, seed=SEED, patients=150) == first
    assert simulate({"1": RULES_V1}, seed=SEED + 1, patients=150) != first


def test_the_cohort_follows_its_published_parameters() -> None:
    p = Parameters()
    cohort = [draw_patient(SEED, i, p) for i in range(3000)]
    screw = [c for c in cohort if c.kind.startswith("screw")]
    loosening = [c for c in screw if c.event == "loosening"]
    assert 0.17 < len(loosening) / len(screw) < 0.23  # up to 20 % revised for loosening
    assert all(6 <= c.onset <= 69 for c in loosening if c.onset is not None)  # day 6 to 69
    assert statistics.mean(c.noise for c in cohort) == pytest.approx(1.0, abs=0.03)
    assert statistics.mean(c.missing for c in cohort) == pytest.approx(0.10, abs=0.02)
    dead = sum(c.death is not None for c in cohort) / len(cohort)
    assert 0.03 < dead < 0.08  # about 10 % a year, so about 5 % within six months
    older = [c.missing for c in cohort if c.age > 90]
    younger = [c.missing for c in cohort if c.age < 80]
    assert statistics.mean(older) > statistics.mean(younger)  # more unanswered with age
    # Every event is a clinically important return: at least 2 points (MCID) above settled.
    events = [c for c in cohort if c.event is not None]
    assert all(c.event_level >= min(10, c.settled + 2) - 1e-9 for c in events)
    for c in events[:50]:
        assert c.onset is not None
        late = true_pain(c, c.onset + c.ramp + 1, p)
        assert late == pytest.approx(c.event_level, abs=0.05)


def test_a_patient_asked_for_a_confirmation_check_in_answers_it_like_any_questionnaire() -> None:
    p = Parameters()
    cohort = (draw_patient(SEED, i, p) for i in range(400))
    outcomes = [follow(patient, RULES_V1, SEED, p) for patient in cohort]
    asked = sum(o.extra_checkins for o in outcomes)
    answered = sum(o.extra_answered for o in outcomes)
    assert asked > 20  # version 1 asks for confirmations on this cohort
    # Answered at the cohort's answer rate (about 90 %; a few fall after death or detection).
    assert 0.75 < answered / asked <= 1


def test_candidate_protocols_add_check_ins_only_to_the_kinds_they_name() -> None:
    candidates = protocols_from(CANDIDATE_PROTOCOL_DIR)
    days = {kind: [i["day"] for i in items] for kind, items in candidates.items()}
    assert {63, 70, 77, 120, 150} <= set(days["screw_fixation"])
    assert {120, 150} <= set(days["cementoplasty"]) and 63 not in days["cementoplasty"]
    assert days["sclerotherapy"] == [i["day"] for i in load_protocol("sclerotherapy")]


def test_unknown_or_bad_parameters_are_refused_by_name() -> None:
    assert parameters_with({"noise_sd": "1.5"}).noise_sd == 1.5
    with pytest.raises(ValueError, match="noise: unknown simulation parameter"):
        parameters_with({"noise": "1"})
    with pytest.raises(ValueError, match="loosening_rate: expected a number"):
        parameters_with({"loosening_rate": "often"})
    with pytest.raises(ValueError, match="noise_sd: expected a non-negative number"):
        parameters_with({"noise_sd": "-1"})


def test_more_noise_means_more_stable_patients_falsely_alerted() -> None:
    quiet, noisy = (
        simulate({"1": RULES_V1}, patients=600, parameters=parameters_with({"noise_sd": sd}))[0]
        for sd in ("0.5", "1.5")
    )
    assert quiet.stable_falsely_alerted is not None and noisy.stable_falsely_alerted is not None
    assert quiet.stable_falsely_alerted < noisy.stable_falsely_alerted


def test_flask_rules_simulate_prints_one_column_per_version(runner: Any) -> None:
    result = runner.invoke(
        args=["rules", "simulate", "--patients", "60", "--rules", "1", "--rules", "2:candidates"]
    )
    assert result.exit_code == 0, result.output
    assert "| measure | v1 | v2:candidates |" in result.output
    assert "seed 20261201, 60 patients" in result.output

    as_json = runner.invoke(
        args=["rules", "simulate", "--patients", "60", "--rules", "2", "--json"]
    )
    data = json.loads(as_json.output)
    assert data["versions"][0]["version"] == "2" and data["versions"][0]["patients"] == 60
    assert (
        simulate({"2": RULES_V2}, patients=60)[0].sensitivity == data["versions"][0]["sensitivity"]
    )


def test_flask_rules_simulate_names_a_bad_parameter(runner: Any) -> None:
    result = runner.invoke(args=["rules", "simulate", "--param", "colour=blue"])
    assert result.exit_code != 0
    assert "colour: unknown simulation parameter" in result.output
