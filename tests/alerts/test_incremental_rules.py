"""Incremental evaluation (``rules.Fold``) gives exactly what a whole evaluation gives.

Random histories (seeded, so a failure is reproducible), both shipped rule sets, answers arriving
in any order (a bad connection delivers an old answer late), missed questionnaires, duplicates:
each arrival is evaluated the way ``backend.alerts.services`` does it (the kept state, read back
from its JSON, plus the new answer when it is the latest; else the whole history again) and
compared with ``evaluate()`` of every answer received so far: same signals (kinds, severities,
evidence, summaries, rule versions) and confirmation requests, in the same order.
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from backend.alerts.rules import (
    ALERT_KINDS,
    CHANGES,
    PROCEDURE_KINDS,
    RULES_V1,
    RULES_V2,
    SYMPTOMS,
    Evaluation,
    Fold,
    MissedFacts,
    ProcedureFacts,
    ResponseFacts,
    RuleSet,
    evaluate,
    fold,
    reconcile,
)

DISCHARGE = date(2026, 1, 5)
START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def canonical(evaluation: Evaluation) -> str:
    """The evaluation as the database would keep it (JSON), so a tuple and a list are equal."""

    def other(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, frozenset):
            return sorted(value)
        raise TypeError(repr(value))

    return json.dumps(dataclasses.asdict(evaluation), sort_keys=True, default=other)


def random_procedure(rng: random.Random) -> ProcedureFacts:
    return ProcedureFacts(
        kind=rng.choice(sorted(PROCEDURE_KINDS)),
        discharged_on=DISCHARGE,
        baseline_pain_walking=rng.randint(3, 10),
        baseline_pain_rest=rng.randint(0, 10),
        baseline_mobility=rng.choice([None, rng.randint(0, 9)]),
        baseline_analgesic_step=rng.choice([None, rng.randint(0, 3)]),
        baseline_aid_level=rng.choice([None, rng.randint(0, 5)]),
    )


def random_history(rng: random.Random, n: int) -> list[ResponseFacts]:
    """``n`` answers over about a year, with a pain course that settles, relapses and drifts,
    sometimes two at the same instant (ties are ordered by id)."""
    responses = []
    pain = rng.randint(4, 9)
    at = START
    for _ in range(n):
        at += rng.choice([timedelta(0), timedelta(hours=rng.randint(1, 96))])
        pain = min(10, max(0, pain + rng.choice([-2, -1, -1, 0, 0, 0, 1, 1, 3])))
        symptoms = frozenset(rng.sample(sorted(SYMPTOMS), rng.choice([0, 0, 0, 0, 0, 1, 2])))
        responses.append(
            ResponseFacts(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                answered_at=at,
                day=(at.date() - DISCHARGE).days,
                pain_walking=pain,
                pain_rest=max(0, pain - rng.randint(0, 3)),
                analgesic_step=rng.randint(0, 3),
                aid_level=rng.choice([0, 0, 1, 1, 2, 3, 4, 5]),
                fell=rng.random() < 0.05,
                symptoms=symptoms,
                change=rng.choice(CHANGES),
                call_request=rng.random() < 0.05,
                mobility_score=rng.choice([None, rng.randint(0, 9)]),
            )
        )
    return responses


def random_missed(rng: random.Random, count: int) -> list[MissedFacts]:
    return [
        MissedFacts(
            assignment_id=str(uuid.UUID(int=rng.getrandbits(128))),
            day=day,
            closes_at=START + timedelta(days=day, hours=rng.randint(0, 72)),
            reason=rng.choice(["protocol", "protocol", "confirmation"]),
        )
        for day in sorted(rng.sample(range(1, 360), count))
    ]


def arrival_order(rng: random.Random, responses: list[ResponseFacts]) -> list[ResponseFacts]:
    """Mostly in answered order; some answers held back by a phone offline and sent later."""
    arrivals = list(responses)
    for _ in range(rng.randint(0, 4)):
        i = rng.randrange(len(arrivals))
        late = arrivals.pop(i)
        arrivals.insert(min(len(arrivals), i + rng.randint(1, 15)), late)
    return arrivals


def through_json(state: Fold, procedure: ProcedureFacts, rules: RuleSet) -> Fold:
    return Fold.load(json.loads(json.dumps(state.dump())), procedure, rules)


def plans(evaluation: Evaluation, resolutions: dict[str, list[datetime]]) -> str:
    """What the database is told: the open episode per kind, and the confirmation requests."""
    shown = [dataclasses.asdict(p) for p in reconcile(evaluation.signals, resolutions)]
    requests = [dataclasses.asdict(r) for r in evaluation.confirmation_requests]
    return json.dumps([shown, requests], sort_keys=True, default=lambda v: v.isoformat())


def replay(
    procedure: ProcedureFacts,
    arrivals: list[ResponseFacts],
    missed: list[MissedFacts],
    rules_at: Any,
    resolve: random.Random | None = None,
) -> tuple[int, int]:
    """Each arrival evaluated as the service does; each result compared with ``evaluate``.
    With ``resolve``, nurses resolve kinds now and then and the state forgets what they
    settled (``Fold.forget``): then the plans are compared, as ``reconcile`` makes them.
    Returns how many arrivals took the incremental way and how many the whole one."""
    kept: tuple[int, dict[str, Any]] | None = None  # (rule version, state's JSON)
    received: list[ResponseFacts] = []
    resolutions: dict[str, list[datetime]] = {}
    quick = whole = 0
    for n, response in enumerate(arrivals):
        received.append(response)
        rules: RuleSet = rules_at(n)
        state = None
        if kept is not None and kept[0] == rules.version:
            state = Fold.load(json.loads(json.dumps(kept[1])), procedure, rules)
            if state.count + 1 != len(received) or not state.follows(response):
                state = None
        if state is None:
            state = fold(procedure, received, rules)
            whole += 1
        else:
            state.add(response)
            quick += 1
        # Missed questionnaires closed so far: they come and go with time, never folded.
        closed = [m for m in missed if m.closes_at <= response.answered_at + timedelta(days=1)]
        expected = evaluate(procedure, received, closed, rules)
        if resolve is None:
            assert canonical(state.finish(closed)) == canonical(expected), (n, response)
        else:
            got = state.finish(closed)
            assert plans(got, resolutions) == plans(expected, resolutions), (n, response)
            if resolve.random() < 0.3:  # a nurse resolves a kind, a little after the answer
                kind = resolve.choice(ALERT_KINDS)
                at = max(r.answered_at for r in received) + timedelta(hours=resolve.randint(0, 6))
                resolutions.setdefault(kind, []).append(at)
            state.forget(resolutions)
        kept = (rules.version, state.dump())
    return quick, whole


@pytest.mark.parametrize("seed", range(30))
def test_the_incremental_evaluation_equals_the_whole_one_for_random_histories(seed):
    rng = random.Random(seed)
    procedure = random_procedure(rng)
    history = random_history(rng, rng.randint(5, 45))
    missed = random_missed(rng, rng.randint(0, 8))
    rules = rng.choice([RULES_V1, RULES_V2])
    quick, whole = replay(procedure, arrival_order(rng, history), missed, lambda n: rules)
    assert quick > 0 and whole >= 1


@pytest.mark.parametrize("seed", range(15))
def test_forgetting_what_resolutions_settled_changes_no_plan(seed):
    rng = random.Random(2000 + seed)
    procedure = random_procedure(rng)
    history = random_history(rng, rng.randint(10, 45))
    missed = random_missed(rng, rng.randint(0, 6))
    rules = rng.choice([RULES_V1, RULES_V2])
    arrivals = arrival_order(rng, history)
    quick, _ = replay(procedure, arrivals, missed, lambda n: rules, resolve=rng)
    assert quick > 0


@pytest.mark.parametrize("seed", range(10))
def test_a_rule_version_change_is_evaluated_whole_and_then_incrementally_again(seed):
    rng = random.Random(1000 + seed)
    procedure = random_procedure(rng)
    history = sorted(random_history(rng, 60), key=lambda r: (r.answered_at, r.id))
    switch = rng.randint(10, 50)
    quick, whole = replay(procedure, history, [], lambda n: RULES_V1 if n < switch else RULES_V2)
    assert whole == 2 and quick == 58  # the first answer, the switch; all others incremental


def test_every_answer_in_answered_order_is_folded_once():
    rng = random.Random(7)
    procedure = random_procedure(rng)
    history = sorted(random_history(rng, 30), key=lambda r: (r.answered_at, r.id))
    quick, whole = replay(procedure, history, random_missed(rng, 5), lambda n: RULES_V2)
    assert (quick, whole) == (29, 1)


def test_an_answer_already_folded_or_older_than_the_last_is_refused():
    rng = random.Random(3)
    procedure = random_procedure(rng)
    history = sorted(random_history(rng, 10), key=lambda r: (r.answered_at, r.id))
    state = through_json(fold(procedure, history, RULES_V1), procedure, RULES_V1)
    for response in (history[-1], history[0]):  # a duplicate, an old answer arriving late
        assert not state.follows(response)
        with pytest.raises(ValueError):
            state.add(response)


def test_a_state_of_another_format_is_refused():
    rng = random.Random(5)
    procedure = random_procedure(rng)
    data = fold(procedure, random_history(rng, 5), RULES_V1).dump()
    with pytest.raises(ValueError):
        Fold.load(data | {"format": 0}, procedure, RULES_V1)
