"""The alert rules engine against clinical.md, "Alert rules (version 1)".

Trajectories are (day, walking pain) with personas; each answer is given at 10:00 UTC on its day.
"""

import dataclasses
import json
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from backend.alerts.rules import (
    RULES_V1,
    RULESET_V1_PATH,
    AlertPlan,
    Evaluation,
    MissedFacts,
    ProcedureFacts,
    ResponseFacts,
    Signal,
    evaluate,
    load_ruleset,
    reconcile,
)

DISCHARGE = date(2026, 3, 2)
SCREW_KINDS = ("screw_fixation", "screw_fixation_cementoplasty", "other_hardware")
RECURRENCE_KINDS = ("cementoplasty", "sclerotherapy")


def at(day: float) -> datetime:
    return datetime.combine(DISCHARGE, time(10), UTC) + timedelta(days=day)


def procedure(
    kind: str = "screw_fixation",
    *,
    walking: int = 8,
    mobility: int | None = None,
    analgesic: int | None = 2,
    aid: int | None = 3,
) -> ProcedureFacts:
    return ProcedureFacts(
        kind=kind,
        discharged_on=DISCHARGE,
        baseline_pain_walking=walking,
        baseline_pain_rest=5,
        baseline_mobility=mobility,
        baseline_analgesic_step=analgesic,
        baseline_aid_level=aid,
    )


def answer(
    day: int,
    walking: int,
    *,
    id: str | None = None,
    rest: int = 1,
    step: int = 1,
    aid: int = 1,
    fell: bool = False,
    symptoms: Sequence[str] = (),
    change: str = "no_change",
    call: bool = False,
    mobility: int | None = None,
) -> ResponseFacts:
    return ResponseFacts(
        id=id or f"d{day:03d}",
        answered_at=at(day),
        day=day,
        pain_walking=walking,
        pain_rest=rest,
        analgesic_step=step,
        aid_level=aid,
        fell=fell,
        symptoms=frozenset(symptoms),
        change=change,
        call_request=call,
        mobility_score=mobility,
    )


def walks(*points: tuple[int, int]) -> list[ResponseFacts]:
    return [answer(day, walking) for day, walking in points]


def missed(day: int, reason: str = "protocol") -> MissedFacts:
    window = 3 if day < 90 else 7
    return MissedFacts(f"a{day:03d}-{reason}", day, at(day + window), reason)


def fired(evaluation: Evaluation) -> list[tuple[str, str | None]]:
    return [(s.kind, s.response_id) for s in evaluation.signals]


def codes(evaluation: Evaluation, kind: str, response_id: str | None = None) -> list[str]:
    return [
        reason.code
        for s in evaluation.signals
        if s.kind == kind and (response_id is None or s.response_id == response_id)
        for reason in s.reasons
    ]


def requested(evaluation: Evaluation) -> list[str]:
    return [request.response_id for request in evaluation.confirmation_requests]


def criterion_met(evaluation: Evaluation, response_id: str) -> bool:
    """Met the pain-recurrence criterion: asked for a confirmation or fired at once."""
    return response_id in requested(evaluation) or any(
        s.response_id == response_id and reason.code == "pain_recurrence"
        for s in evaluation.signals
        for reason in s.reasons
    )


# Marcel, 86, sacroiliac screws: settles at 2/10, relapses at week 6, confirmed three days later.
MARCEL = walks((1, 7), (7, 5), (14, 3), (21, 2), (30, 2), (42, 5), (45, 5))


# --------------------------------------------------------------------------------------------
# Trajectories
# --------------------------------------------------------------------------------------------


def test_marcel_relapsing_at_week_6_gets_a_confirmation_check_in_then_a_loosening_alert() -> None:
    evaluation = evaluate(procedure("screw_fixation"), MARCEL)

    assert fired(evaluation) == [("possible_screw_loosening", "d045")]
    [request] = evaluation.confirmation_requests
    assert (request.response_id, request.due, request.due_day) == ("d042", at(45), 45)
    assert request.alert_kind == "possible_screw_loosening"
    [signal] = evaluation.signals
    assert signal.severity == "high"
    assert (signal.rule_key, signal.rule_version) == ("possible_screw_loosening", 1)
    assert codes(evaluation, "possible_screw_loosening") == ["pain_recurrence"]
    assert signal.evidence["reference"]["nadir"] == {
        "value": 2,
        "response_ids": ["d021", "d030"],
        "days": [21, 30],
    }
    assert signal.evidence["reasons"][0]["details"]["confirmed"] is True
    assert signal.evidence["thresholds"]["recurrence_min_rise"] == 2
    assert signal.summary == {
        "en": "Walking pain 5/10, up from a best of 2/10 on days 21 and 30, "
        "second report in a row.",
        "fr": "Douleur à la marche 5/10, contre un meilleur niveau de 2/10 aux jours 21 et 30, "
        "deuxième réponse de suite.",
    }


@pytest.mark.parametrize(
    ("persona", "kind", "points", "expected", "requests"),
    [
        pytest.param(
            "Jeanne, 79, cement-augmented acetabular screws",
            "screw_fixation_cementoplasty",
            [(1, 6), (7, 4), (14, 2), (21, 2), (30, 3), (42, 4), (56, 5)],
            [("possible_screw_loosening", "d056")],
            ["d042"],
            id="a gradual rise fires once two reports in a row meet the criterion",
        ),
        pytest.param(
            "Paulette, 91, sacral screws",
            "screw_fixation",
            [(1, 6), (7, 3), (14, 2), (21, 2), (24, 5), (30, 2), (42, 2)],
            [],
            ["d024"],
            id="a single transient spike asks for a confirmation but raises no alert",
        ),
        pytest.param(
            "Robert, 83, pubic ramus screws, baseline 7",
            "screw_fixation",
            [(1, 7), (7, 7), (14, 8), (21, 7), (30, 8), (42, 8)],
            [],
            [],
            id="pain that never improved is no recurrence",
        ),
        pytest.param(
            "Odette, 88, L1 vertebroplasty",
            "cementoplasty",
            [(1, 5), (7, 3), (14, 2), (21, 2), (42, 5), (45, 6)],
            [("pain_recurrence", "d045")],
            ["d042"],
            id="a vertebral cementoplasty relapse is pain recurrence not loosening",
        ),
        pytest.param(
            "Lucien, 80, sacroiliac screws, one noisy low report",
            "screw_fixation",
            [(1, 6), (7, 4), (14, 4), (21, 2), (30, 4), (42, 4), (56, 4), (90, 4), (180, 4)],
            [],
            [],
            id="a stable patient with one noisy low report does not alert",
        ),
        pytest.param(
            "Lucien's twin, the same 4s after two settled reports at 2",
            "screw_fixation",
            [(1, 6), (7, 4), (14, 2), (21, 2), (30, 4), (42, 4)],
            [("possible_screw_loosening", "d042")],
            ["d030"],
            id="two low reports in a row settle the nadir so the same return to 4 fires",
        ),
        pytest.param(
            "Germaine, 84, iliac screws, severe relapse",
            "screw_fixation",
            [(1, 5), (7, 3), (14, 2), (21, 2), (30, 7)],
            [("possible_screw_loosening", "d030")],
            [],
            id="a single response at 7 meeting the criterion fires at once",
        ),
        pytest.param(
            "Germaine's neighbour, relapse to 6",
            "screw_fixation",
            [(1, 5), (7, 3), (14, 2), (21, 2), (30, 6)],
            [],
            ["d030"],
            id="a single response at 6 only asks for a confirmation",
        ),
        pytest.param(
            "Henri, 90, femoral neck screws, settled at 6",
            "screw_fixation",
            [(1, 6), (7, 6), (14, 7)],
            [],
            [],
            id="a response at 7 that does not meet the criterion does not fire",
        ),
        pytest.param(
            "Simone, 77, sacroiliac screws, first answer at 9",
            "screw_fixation",
            [(1, 9)],
            [],
            [],
            id="the first response has no nadir so cannot recur",
        ),
        pytest.param(
            "Yvette, 82, bone cyst sclerotherapy",
            "sclerotherapy",
            [(1, 4), (7, 1), (30, 1), (90, 4), (93, 4)],
            [("pain_recurrence", "d093")],
            ["d090"],
            id="a sclerotherapy relapse in the sparse months is confirmed in days",
        ),
    ],
)
def test_each_trajectory_raises_exactly_the_expected_alerts(
    persona: str,
    kind: str,
    points: list[tuple[int, int]],
    expected: list[tuple[str, str]],
    requests: list[str],
) -> None:
    evaluation = evaluate(procedure(kind), walks(*points))
    assert fired(evaluation) == expected, persona
    assert requested(evaluation) == requests, persona


@pytest.mark.parametrize("kind", SCREW_KINDS + RECURRENCE_KINDS)
def test_the_same_relapse_is_loosening_after_hardware_and_pain_recurrence_otherwise(
    kind: str,
) -> None:
    evaluation = evaluate(procedure(kind), MARCEL)
    expected = "possible_screw_loosening" if kind in SCREW_KINDS else "pain_recurrence"
    assert fired(evaluation) == [(expected, "d045")]
    assert evaluation.signals[0].severity == "high"


def test_clicking_after_cementoplasty_is_not_loosening() -> None:
    responses = [*walks((1, 4), (7, 2), (14, 2)), answer(21, 3, symptoms=["clicking"])]
    assert fired(evaluate(procedure("cementoplasty"), responses)) == []


# --------------------------------------------------------------------------------------------
# Thresholds at, below and above their values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settled", "baseline", "probe", "met"),
    [
        pytest.param((2, 2), 10, 4, True, id="nadir 2: 4 is nadir plus 2 and meets"),
        pytest.param((2, 2), 10, 3, False, id="nadir 2: 3 is nadir plus 1 and does not"),
        pytest.param((2, 3), 10, 5, True, id="nadir 2.5: 5 clears nadir plus 2"),
        pytest.param((2, 3), 10, 4, False, id="nadir 2.5: 4 falls short of 4.5"),
        pytest.param((5, 5), 10, 6, False, id="nadir 5: 6 is below the 30 percent mark of 6.5"),
        pytest.param((5, 5), 10, 7, True, id="nadir 5: 7 clears both marks"),
        pytest.param((7, 7), 8, 9, False, id="nadir 7: 9 is plus 2 but under 30 percent (9.1)"),
        pytest.param((7, 7), 8, 10, True, id="nadir 7: 10 is 30 percent above"),
        pytest.param((0, 0), 10, 2, True, id="nadir 0: plus 2 suffices"),
        pytest.param((0, 0), 10, 1, False, id="nadir 0: plus 1 does not"),
        pytest.param((7, 7), 9, 9, True, id="back to the pre-procedure 9 after improving by 2"),
        pytest.param((7, 7), 8, 8, False, id="back to the pre-procedure 8 after improving by 1"),
        pytest.param((8, 5), 8, 8, False, id="one report at 5 is not a settled improvement by 2"),
    ],
)
def test_the_pain_recurrence_criterion_at_below_and_above_its_thresholds(
    settled: tuple[int, int], baseline: int, probe: int, met: bool
) -> None:
    responses = walks((1, settled[0]), (7, settled[1]), (14, probe))
    evaluation = evaluate(procedure("cementoplasty", walking=baseline), responses)
    assert criterion_met(evaluation, "d014") is met


def test_return_to_baseline_is_recorded_as_its_own_route() -> None:
    responses = walks((1, 7), (7, 7), (14, 9))
    [signal] = evaluate(procedure("cementoplasty", walking=9), responses).signals
    assert signal.reasons[0].details["routes"] == ["baseline"]
    assert "back to its pre-procedure 9/10" in signal.summary["en"]


@pytest.mark.parametrize(
    ("kind", "followup_score", "walking", "expected"),
    [
        pytest.param("cementoplasty", 5, 2, [("worsening", "d090")], id="2 below best declines"),
        pytest.param("cementoplasty", 6, 2, [], id="1 below best does not"),
        pytest.param(
            "screw_fixation",
            5,
            3,
            [("possible_screw_loosening", "d090")],
            id="after screws a decline with pain above nadir is loosening",
        ),
        pytest.param(
            "screw_fixation",
            5,
            2,
            [("worsening", "d090")],
            id="after screws a decline with pain at nadir is worsening",
        ),
    ],
)
def test_mobility_decline_needs_two_points_below_the_best(
    kind: str, followup_score: int, walking: int, expected: list[tuple[str, str]]
) -> None:
    responses = [
        *walks((1, 4), (7, 2), (14, 2)),
        answer(30, 2, mobility=7),
        answer(90, walking, mobility=followup_score),
    ]
    evaluation = evaluate(procedure(kind, mobility=8), responses)
    assert fired(evaluation) == expected
    assert [r.code for s in evaluation.signals for r in s.reasons] == ["mobility_decline"] * len(
        expected
    )


def test_the_first_follow_up_is_compared_with_the_pre_fracture_mobility() -> None:
    responses = [answer(1, 4), answer(30, 3, mobility=6)]
    evaluation = evaluate(procedure("cementoplasty", mobility=8), responses)
    assert codes(evaluation, "worsening") == ["mobility_decline"]
    assert evaluation.signals[0].summary == {
        "en": "Mobility score 6/9, down from a best of 8/9 before the procedure.",
        "fr": "Score de mobilité 6/9, contre 8/9 au mieux avant la procédure.",
    }


@pytest.mark.parametrize(
    ("aid", "worse"),
    [
        pytest.param(2, True, id="crutches after walking without aid is 2 levels worse"),
        pytest.param(1, False, id="a cane after walking without aid is 1 level worse"),
    ],
)
def test_walking_aid_worse_by_two_levels_than_its_best(aid: int, worse: bool) -> None:
    responses = [answer(1, 3, aid=2), answer(7, 2, aid=0), answer(14, 2, aid=aid)]
    evaluation = evaluate(procedure("cementoplasty"), responses)
    assert ("walking_aid_worse" in codes(evaluation, "worsening", "d014")) is worse


@pytest.mark.parametrize(
    ("walking", "expected"),
    [
        pytest.param(3, [("possible_screw_loosening", "d021")], id="clicking 1 above nadir"),
        pytest.param(2, [], id="clicking at nadir"),
    ],
)
def test_a_mechanical_sign_needs_walking_pain_one_above_nadir(
    walking: int, expected: list[tuple[str, str]]
) -> None:
    responses = [*walks((1, 4), (7, 2), (14, 2)), answer(21, walking, symptoms=["clicking"])]
    evaluation = evaluate(procedure("screw_fixation"), responses)
    assert fired(evaluation) == expected
    assert requested(evaluation) == []


def test_a_mechanical_sign_opens_loosening_at_once_so_no_confirmation_is_asked() -> None:
    responses = [*walks((1, 4), (7, 2), (14, 2)), answer(21, 5, symptoms=["entry_point_bump"])]
    evaluation = evaluate(procedure("screw_fixation"), responses)
    assert fired(evaluation) == [("possible_screw_loosening", "d021")]
    assert codes(evaluation, "possible_screw_loosening") == ["mechanical_sign"]
    assert requested(evaluation) == []


@pytest.mark.parametrize(
    ("steps", "escalates"),
    [
        pytest.param([0, 1], False, id="a paracetamol step alone does not count"),
        pytest.param([1, 1, 0, 1], False, id="back on paracetamol does not count"),
        pytest.param([2, 1, 2], True, id="back on a weak opioid after coming down counts"),
        pytest.param([2, 0, 2], True, id="back on a weak opioid after stopping counts"),
        pytest.param([2, 3], True, id="weak to strong opioid counts"),
        pytest.param([2, 2, 2], False, id="staying on a weak opioid does not count"),
        pytest.param([3, 2], False, id="coming down does not count"),
        pytest.param([3], False, id="the first response cannot escalate"),
    ],
)
def test_analgesic_escalation_needs_a_step_up_onto_an_opioid(
    steps: list[int], escalates: bool
) -> None:
    responses = [answer(1 + 7 * i, 2, step=step) for i, step in enumerate(steps)]
    evaluation = evaluate(procedure("cementoplasty"), responses)
    last = responses[-1].id
    assert ("analgesic_escalation" in codes(evaluation, "worsening", last)) is escalates


# --------------------------------------------------------------------------------------------
# Red flags, worsening, call requests
# --------------------------------------------------------------------------------------------

SETTLED = walks((1, 4), (7, 3), (14, 3))


@pytest.mark.parametrize(
    ("probe", "reason"),
    [
        pytest.param(answer(21, 3, symptoms=["leg_weakness"]), "nerve_symptom", id="leg weakness"),
        pytest.param(answer(21, 3, symptoms=["numbness"]), "nerve_symptom", id="numbness"),
        pytest.param(
            answer(21, 3, symptoms=["bladder_bowel"]), "nerve_symptom", id="bladder or bowel"
        ),
        pytest.param(
            answer(21, 3, symptoms=["breathlessness"]), "embolism_symptom", id="breathlessness"
        ),
        pytest.param(answer(21, 3, symptoms=["chest_pain"]), "embolism_symptom", id="chest pain"),
        pytest.param(
            answer(21, 3, symptoms=["fever", "wound_redness"]),
            "infection",
            id="fever with wound redness",
        ),
        pytest.param(
            answer(21, 3, symptoms=["fever", "wound_discharge"]),
            "infection",
            id="fever with wound discharge",
        ),
        pytest.param(answer(21, 5, fell=True), "fall_with_pain_rise", id="a fall with pain +2"),
        pytest.param(answer(21, 3, aid=5), "newly_unable_to_walk", id="newly unable to walk"),
    ],
)
def test_each_red_flag_is_urgent(probe: ResponseFacts, reason: str) -> None:
    evaluation = evaluate(procedure("screw_fixation"), [*SETTLED, probe])
    [red] = [s for s in evaluation.signals if s.kind == "red_flag"]
    assert (red.severity, red.response_id) == ("urgent", "d021")
    assert [r.code for r in red.reasons] == [reason]


@pytest.mark.parametrize(
    "probe",
    [
        pytest.param(answer(21, 4, fell=True), id="a fall with pain only 1 above previous"),
        pytest.param(answer(21, 3, fell=True), id="a fall without more pain"),
        pytest.param(answer(21, 5), id="pain 2 above previous without a fall"),
        pytest.param(answer(21, 3, symptoms=["fever"]), id="fever alone"),
        pytest.param(answer(21, 3, symptoms=["wound_redness"]), id="wound redness alone"),
    ],
)
def test_near_misses_are_no_red_flag(probe: ResponseFacts) -> None:
    evaluation = evaluate(procedure("screw_fixation"), [*SETTLED, probe])
    assert "red_flag" not in [s.kind for s in evaluation.signals]


def test_fever_with_a_wound_sign_is_a_red_flag_and_not_also_a_worsening() -> None:
    probe = answer(21, 3, symptoms=["fever", "wound_redness"])
    evaluation = evaluate(procedure("cementoplasty"), [*SETTLED, probe])
    assert fired(evaluation) == [("red_flag", "d021")]


def test_still_unable_to_walk_is_not_newly_unable() -> None:
    responses = [answer(1, 4, aid=5), answer(7, 4, aid=5)]
    evaluation = evaluate(procedure("cementoplasty", aid=5), responses)
    assert fired(evaluation) == []


@pytest.mark.parametrize(
    ("baseline_aid", "red_flag"),
    [
        pytest.param(3, True, id="a walker before the procedure"),
        pytest.param(None, True, id="an unknown baseline walking aid"),
        pytest.param(5, False, id="already unable before the procedure"),
    ],
)
def test_a_first_answer_unable_to_walk_is_compared_with_the_baseline(
    baseline_aid: int | None, red_flag: bool
) -> None:
    evaluation = evaluate(procedure("cementoplasty", aid=baseline_aid), [answer(1, 6, aid=5)])
    assert ("newly_unable_to_walk" in codes(evaluation, "red_flag")) is red_flag


def test_a_first_answer_fall_is_compared_with_the_baseline_walking_pain() -> None:
    evaluation = evaluate(procedure("cementoplasty", walking=6), [answer(1, 8, fell=True)])
    assert codes(evaluation, "red_flag") == ["fall_with_pain_rise"]
    assert "up from 6/10 before the procedure" in evaluation.signals[0].summary["en"]


@pytest.mark.parametrize(
    ("probe", "reason"),
    [
        pytest.param(answer(21, 3, symptoms=["fever"]), "fever_alone", id="fever alone"),
        pytest.param(
            answer(21, 3, symptoms=["wound_discharge"]), "wound_sign_alone", id="a wound sign"
        ),
        pytest.param(
            answer(21, 3, symptoms=["new_contralateral_pain"]),
            "new_contralateral_pain",
            id="new pain on the other side",
        ),
        pytest.param(answer(21, 3, change="much_worse"), "much_worse", id="much worse"),
        pytest.param(answer(21, 3, change="very_much_worse"), "much_worse", id="very much worse"),
    ],
)
def test_worsening_is_routine(probe: ResponseFacts, reason: str) -> None:
    evaluation = evaluate(procedure("cementoplasty"), [*SETTLED, probe])
    assert fired(evaluation) == [("worsening", "d021")]
    assert evaluation.signals[0].severity == "routine"
    assert codes(evaluation, "worsening") == [reason]


def test_minimally_worse_is_no_worsening() -> None:
    evaluation = evaluate(
        procedure("cementoplasty"), [*SETTLED, answer(21, 3, change="minimally_worse")]
    )
    assert fired(evaluation) == []


def test_worsening_stays_silent_when_loosening_fires_but_is_kept_as_evidence() -> None:
    probe = answer(21, 7, symptoms=["fever"], change="much_worse")
    evaluation = evaluate(procedure("screw_fixation"), [*walks((1, 4), (7, 2), (14, 2)), probe])
    assert fired(evaluation) == [("possible_screw_loosening", "d021")]
    accompanying = evaluation.signals[0].evidence["accompanying"]
    assert [item["code"] for item in accompanying] == ["fever_alone", "much_worse"]


def test_worsening_still_fires_beside_an_unconfirmed_recurrence() -> None:
    probe = answer(21, 5, change="much_worse")
    evaluation = evaluate(procedure("screw_fixation"), [*walks((1, 4), (7, 2), (14, 2)), probe])
    assert fired(evaluation) == [("worsening", "d021")]
    assert requested(evaluation) == ["d021"]


def test_newly_unable_to_walk_is_a_red_flag_and_a_walking_aid_worsening() -> None:
    evaluation = evaluate(procedure("cementoplasty"), [*SETTLED, answer(21, 3, aid=5)])
    assert fired(evaluation) == [("red_flag", "d021"), ("worsening", "d021")]
    assert codes(evaluation, "worsening") == ["walking_aid_worse"]


def test_a_call_request_is_high() -> None:
    evaluation = evaluate(procedure("cementoplasty"), [*SETTLED, answer(21, 4, rest=2, call=True)])
    [signal] = evaluation.signals
    assert (signal.kind, signal.severity, signal.response_id) == ("call_request", "high", "d021")
    assert signal.summary["en"] == "Asks for a nurse to call (walking pain 4/10, at rest 2/10)."


# --------------------------------------------------------------------------------------------
# Missed questionnaires
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "missing", "expected"),
    [
        pytest.param(
            [1],
            [missed(7), missed(14)],
            [("a014-protocol", ["two_missed"])],
            id="two consecutive scheduled questionnaires missed",
        ),
        pytest.param(
            [1, 14],
            [missed(7), missed(21)],
            [],
            id="two misses with an answer between are not consecutive",
        ),
        pytest.param(
            [1, 12],
            [missed(7), missed(14)],
            [],
            id="an unscheduled check-in between two misses breaks the run",
        ),
        pytest.param(
            [1, 7, 14, 21],
            [missed(30)],
            [("a030-protocol", ["missed_from_day_30"])],
            id="one missed at day 30",
        ),
        pytest.param([1, 7, 14], [missed(21)], [], id="one missed at day 21"),
        pytest.param(
            [1, 7, 42],
            [missed(45, "confirmation")],
            [],
            id="a missed confirmation check-in does not count",
        ),
        pytest.param(
            [1, 42],
            [missed(45, "confirmation"), missed(48, "confirmation")],
            [],
            id="two missed confirmation check-ins do not count",
        ),
        pytest.param(
            [1, 7],
            [missed(14), missed(17, "confirmation"), missed(21)],
            [("a021-protocol", ["two_missed"])],
            id="a missed confirmation check-in between two misses does not break the run",
        ),
        pytest.param(
            [1],
            [missed(7), missed(14), missed(21)],
            [("a014-protocol", ["two_missed"]), ("a021-protocol", ["two_missed"])],
            id="a third miss in a row fires again",
        ),
        pytest.param(
            [1, 7, 14, 21],
            [missed(30), missed(42)],
            [
                ("a030-protocol", ["missed_from_day_30"]),
                ("a042-protocol", ["two_missed", "missed_from_day_30"]),
            ],
            id="two misses from day 30 give both reasons",
        ),
    ],
)
def test_no_response_fires_on_consecutive_or_late_scheduled_misses(
    answered: list[int], missing: list[MissedFacts], expected: list[tuple[str, list[str]]]
) -> None:
    responses = [answer(day, 2) for day in answered]
    evaluation = evaluate(procedure("cementoplasty"), responses, missing)
    signals = [s for s in evaluation.signals if s.kind == "no_response"]
    assert [
        (s.evidence["missed"][-1]["assignment_id"], [r.code for r in s.reasons]) for s in signals
    ] == expected
    by_id = {m.assignment_id: m for m in missing}
    for signal, (assignment_id, _) in zip(signals, expected, strict=True):
        assert signal.response_id is None
        assert signal.answered_at == by_id[assignment_id].closes_at
        assert signal.severity == "routine"


def test_the_no_response_summary_names_the_missed_days() -> None:
    evaluation = evaluate(procedure("cementoplasty"), [answer(1, 2)], [missed(7), missed(14)])
    assert evaluation.signals[0].summary == {
        "en": "2 scheduled questionnaires missed in a row (days 7 and 14).",
        "fr": "2 questionnaires programmés manqués de suite (jours 7 et 14).",
    }


# --------------------------------------------------------------------------------------------
# Order independence, evidence and summaries
# --------------------------------------------------------------------------------------------


def busy_year() -> tuple[list[ResponseFacts], list[MissedFacts]]:
    """Madeleine, 85, sacroiliac screws: a year with relapses, flags, escalations and ties."""
    responses = [
        answer(1, 7, step=2, aid=3),
        answer(7, 5, step=2, aid=3),
        answer(14, 3, step=1, aid=2),
        answer(21, 2, step=1, aid=1),
        answer(24, 4, id="u024", step=2, symptoms=["clicking"], call=True),
        answer(30, 2, step=1, aid=1, mobility=6),
        answer(42, 5, aid=3, symptoms=["fever"], change="much_worse"),
        answer(45, 5, id="c045", symptoms=["fever", "wound_redness"]),
        answer(56, 3, fell=True),
        answer(60, 6, id="u060a", fell=True, symptoms=["numbness"]),
        answer(60, 6, id="u060b", aid=5),
        answer(90, 4, mobility=3, step=3),
        answer(100, 2, symptoms=["new_contralateral_pain"]),
        answer(176, 8, id="u176", mobility=4, change="very_much_worse"),
        answer(179, 8, id="c179", step=0),
        answer(365, 2, mobility=7, symptoms=["chest_pain"]),
    ]
    missing = [missed(56, "confirmation"), missed(90), missed(180, "confirmation"), missed(180)]
    return responses, missing


def test_evaluation_does_not_depend_on_the_order_responses_arrive_in() -> None:
    responses, missing = busy_year()
    expected = evaluate(procedure("screw_fixation", mobility=7), responses, missing)
    assert len(expected.signals) > 10
    for seed in range(50):
        rng = random.Random(seed)
        shuffled, shuffled_missed = responses[:], missing[:]
        rng.shuffle(shuffled)
        rng.shuffle(shuffled_missed)
        again = evaluate(procedure("screw_fixation", mobility=7), shuffled, shuffled_missed)
        assert again == expected, seed


def all_signals() -> list[Signal]:
    responses, missing = busy_year()
    signals = evaluate(procedure("screw_fixation", mobility=7), responses, missing).signals
    signals += evaluate(procedure("screw_fixation"), MARCEL).signals
    signals += evaluate(
        procedure("cementoplasty"), walks((1, 4), (7, 2), (14, 3), (21, 5), (24, 5))
    ).signals
    return signals


def test_every_kind_appears_in_the_sample_of_signals() -> None:
    kinds = {s.kind for s in all_signals()}
    assert kinds == {
        "red_flag",
        "possible_screw_loosening",
        "pain_recurrence",
        "worsening",
        "call_request",
        "no_response",
    }


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_summaries_are_single_non_empty_sentences(lang: str) -> None:
    for signal in all_signals():
        text = signal.summary[lang]
        assert text and text[0].isupper() and text.endswith("."), text
        assert ". " not in text and "\n" not in text and text.count(".") <= 3, text


def test_evidence_is_json_and_names_its_rule() -> None:
    for signal in all_signals():
        evidence = json.loads(json.dumps(signal.evidence))
        assert evidence["rule"] == {"key": signal.kind, "version": 1}
        assert [r["code"] for r in evidence["reasons"]] == [r.code for r in signal.reasons]
        assert signal.rule_key == signal.kind


def test_a_half_point_nadir_reads_naturally_in_both_languages() -> None:
    evaluation = evaluate(
        procedure("cementoplasty"), walks((1, 4), (7, 2), (14, 3), (21, 5), (24, 5))
    )
    [signal] = evaluation.signals
    expected = "up from a best of 2.5/10 on days 7 and 14, second report in a row"
    assert expected in signal.summary["en"]
    assert "meilleur niveau de 2,5/10 aux jours 7 et 14" in signal.summary["fr"]


def test_a_loosening_summary_lists_each_route() -> None:
    responses = [
        *walks((1, 4), (7, 2), (14, 2)),
        answer(30, 2, mobility=8),
        answer(42, 7, mobility=5, symptoms=["giving_way", "clicking"]),
    ]
    [signal] = evaluate(procedure("screw_fixation"), responses).signals
    assert [r.code for r in signal.reasons] == [
        "pain_recurrence",
        "mechanical_sign",
        "mobility_decline",
    ]
    assert signal.summary["en"] == (
        "Walking pain 7/10, up from a best of 2/10 on days 7 and 14, severe in a single report; "
        "new clicking and giving way; mobility score 5/9, down from a best of 8/9 on day 30."
    )
    assert signal.summary["fr"] == (
        "Douleur à la marche 7/10, contre un meilleur niveau de 2/10 aux jours 7 et 14, "
        "sévère dès une seule réponse ; signe mécanique (claquement et dérobement) ; "
        "score de mobilité 5/9, contre 8/9 au mieux au jour 30."
    )


# --------------------------------------------------------------------------------------------
# Rule set data
# --------------------------------------------------------------------------------------------


def rule_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RULESET_V1_PATH.read_text(encoding="utf-8"))
    return data


def test_the_shipped_rule_set_is_the_specification() -> None:
    rules = RULES_V1
    assert rules.version == 1
    assert (rules.recurrence_min_rise, rules.recurrence_min_relative) == (2, 0.30)
    assert (rules.recurrence_immediate_level, rules.return_to_baseline_min_improvement) == (7, 2)
    assert (rules.mobility_decline, rules.walking_aid_worse_levels) == (2, 2)
    assert (rules.fall_pain_rise, rules.unable_aid_level) == (2, 5)
    assert (rules.mechanical_sign_min_rise, rules.confirmation_delay_days) == (1, 3)
    assert (rules.no_response_consecutive, rules.no_response_single_from_day) == (2, 30)
    assert rules.screw_kinds == frozenset(SCREW_KINDS)
    assert rules.recurrence_kinds == frozenset(RECURRENCE_KINDS)
    assert dict(rules.severities) == {
        "red_flag": "urgent",
        "possible_screw_loosening": "high",
        "pain_recurrence": "high",
        "worsening": "routine",
        "call_request": "high",
        "no_response": "routine",
    }
    assert load_ruleset(rule_data()) == RULES_V1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"colour": "blue"}, "colour: unknown rule set key", id="an unknown key"),
        pytest.param({"fall_pain_rise": None}, "fall_pain_rise", id="a null threshold"),
        pytest.param({"mobility_decline": True}, "mobility_decline", id="a boolean threshold"),
        pytest.param({"recurrence_min_relative": "30%"}, "recurrence_min_relative", id="a string"),
        pytest.param({"nerve_symptoms": ["tingling"]}, "nerve_symptoms", id="an unknown symptom"),
        pytest.param(
            {"severities": {**RULES_V1.severities, "red_flag": "asap"}},
            "severities.red_flag",
            id="an unknown severity",
        ),
        pytest.param(
            {"screw_kinds": ["screw_fixation"]},
            "no rule for procedure kinds",
            id="a procedure kind left without a rule",
        ),
        pytest.param(
            {"recurrence_kinds": ["cementoplasty", "sclerotherapy", "screw_fixation"]},
            "share",
            id="a procedure kind in both lists",
        ),
    ],
)
def test_load_ruleset_rejects_bad_data(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_ruleset(rule_data() | change)


@pytest.mark.parametrize("key", ["version", "no_response_single_from_day", "severities"])
def test_load_ruleset_rejects_a_missing_key(key: str) -> None:
    data = rule_data()
    del data[key]
    with pytest.raises(ValueError, match=f"{key}: missing rule set key"):
        load_ruleset(data)


def test_a_site_can_tune_a_threshold_without_code() -> None:
    tuned = load_ruleset(rule_data() | {"version": 2, "recurrence_immediate_level": 6})
    responses = walks((1, 5), (7, 3), (14, 2), (21, 2), (30, 6))
    evaluation = evaluate(procedure("screw_fixation"), responses, rules=tuned)
    assert fired(evaluation) == [("possible_screw_loosening", "d030")]
    assert evaluation.signals[0].rule_version == 2


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def test_naive_answer_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="answered_at"):
        dataclasses.replace(answer(1, 2), answered_at=datetime(2026, 3, 3, 10))


def test_duplicate_response_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        evaluate(procedure(), [answer(1, 2, id="x"), answer(7, 2, id="x")])


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"kind": "kyphoplasty"}, id="an unknown procedure kind"),
        pytest.param({"baseline_pain_walking": 11}, id="a pain above 10"),
        pytest.param({"baseline_mobility": 10}, id="a mobility score above 9"),
    ],
)
def test_bad_procedure_facts_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        dataclasses.replace(procedure(), **bad)


# --------------------------------------------------------------------------------------------
# Reconcile: one open alert per kind
# --------------------------------------------------------------------------------------------


def madeleine_signals() -> list[Signal]:
    responses, missing = busy_year()
    return evaluate(procedure("screw_fixation", mobility=7), responses, missing).signals


def test_reconcile_keeps_one_open_alert_per_kind_with_merged_evidence() -> None:
    signals = madeleine_signals()
    plans: list[AlertPlan] = reconcile(signals, {})
    assert sorted(p.kind for p in plans) == sorted({s.kind for s in signals})
    for plan in plans:
        mine = [s for s in signals if s.kind == plan.kind]
        assert plan.signals == tuple(mine)
        assert plan.opened_by == mine[0]
        assert plan.evidence == [s.evidence for s in mine]
        assert plan.summary == mine[-1].summary
        assert plan.rule_version == 1
    opened = [p.opened_by.answered_at for p in plans]
    assert opened == sorted(opened)


def test_reconcile_takes_the_highest_severity_of_an_episode() -> None:
    first, second = [s for s in madeleine_signals() if s.kind == "worsening"][:2]
    raised = dataclasses.replace(second, severity="high")
    [plan] = reconcile([raised, first], {})
    assert (plan.severity, plan.opened_by) == ("high", first)


def test_after_a_resolution_only_later_signals_open_a_new_alert() -> None:
    loosening = [s for s in madeleine_signals() if s.kind == "possible_screw_loosening"]
    assert len(loosening) >= 3
    resolved_at = loosening[1].answered_at  # a signal at the resolution instant stays closed
    plans = reconcile(loosening, {"possible_screw_loosening": [at(2), resolved_at]})
    [plan] = plans
    assert plan.signals == tuple(loosening[2:])
    assert plan.opened_by == loosening[2]


def test_a_resolution_after_every_signal_leaves_nothing_open() -> None:
    signals = madeleine_signals()
    plans = reconcile(signals, {"red_flag": [at(400)], "pain_recurrence": [at(400)]})
    assert "red_flag" not in [p.kind for p in plans]
    assert "possible_screw_loosening" in [p.kind for p in plans]


def test_reconcile_with_no_signals_plans_nothing() -> None:
    assert reconcile([], {"red_flag": [at(3)]}) == []
