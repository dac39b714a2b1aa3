"""Randomisation for the planned trial (research.md): stratified permuted blocks, concealed.

1. A study is created with its arms, stratification factors and block sizes (totals, each a
   multiple of the number of arms: 2 and 4 for two arms = 1 or 2 per arm, chosen at random for
   each block). Every stratum's allocation list is generated at once from a secret seed (given,
   or drawn from ``secrets``) and stored; the seed itself is not kept, only its SHA-256.
2. Randomising a patient takes the lowest free slot of their stratum with a conditional UPDATE
   (``patient_id IS NULL``); a unique constraint (study, patient) makes a second slot for the
   same patient impossible, so a repeated call or a concurrent double click returns the arm
   first given. Nothing reads a free slot except this step, at that moment (concealment).
3. The balance report counts arms over completed blocks only, and the allocations of the block
   in progress as one number: with random block sizes, per-arm counts inside an open block
   would let a reader guess the next allocation.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import product
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from backend.audit.services import record
from backend.auth.principal import Principal
from backend.errors import Conflict, NotFound, ValidationProblem, field_error
from backend.extensions import db
from backend.patients.models import Patient
from backend.research.models import Allocation, Study

DEFAULT_LIST_LENGTH = 400


def stratum_key(strata: Mapping[str, Sequence[str]], values: Mapping[str, str]) -> str:
    """``etiology=osteoporotic|location=pelvic_ring`` (factors in name order)."""
    return "|".join(f"{name}={values[name]}" for name in sorted(strata)) or "all"


def all_strata(strata: Mapping[str, Sequence[str]]) -> list[str]:
    names = sorted(strata)
    return [
        stratum_key(strata, dict(zip(names, combo, strict=True)))
        for combo in product(*(strata[n] for n in names))
    ]


def generate_list(
    seed: bytes, stratum: str, arms: Sequence[str], block_sizes: Sequence[int], length: int
) -> list[tuple[int, int, int, str]]:
    """(position, block, block size, arm) for one stratum: permuted blocks of random size, at
    least ``length`` slots (whole blocks). Each stratum draws from its own generator, derived
    from the seed and its name."""
    rng = random.Random(hmac.new(seed, stratum.encode(), hashlib.sha256).digest())  # noqa: S311
    out: list[tuple[int, int, int, str]] = []
    block = 0
    while len(out) < length:
        size = rng.choice(list(block_sizes))
        cells = [arm for arm in arms for _ in range(size // len(arms))]
        rng.shuffle(cells)
        start = len(out)
        out.extend((start + i, block, size, arm) for i, arm in enumerate(cells))
        block += 1
    return out


def validate_definition(
    arms: Sequence[str], strata: Mapping[str, Sequence[str]], block_sizes: Sequence[int]
) -> None:
    errors = []
    if len(arms) < 2 or len(set(arms)) != len(arms):
        errors.append(field_error("/arms", "Give two or more distinct arms."))
    for name, values in strata.items():
        if not values or len(set(values)) != len(values):
            errors.append(field_error(f"/strata/{name}", "Give distinct values."))
    if not block_sizes or any(b <= 0 or b % max(len(arms), 1) for b in block_sizes):
        errors.append(
            field_error("/block_sizes", "Each block size must be a multiple of the arm count.")
        )
    if errors:
        raise ValidationProblem(errors)


def create_study(
    *,
    site_id: uuid.UUID,
    key: str,
    title: str,
    arms: Sequence[str],
    strata: Mapping[str, Sequence[str]],
    block_sizes: Sequence[int],
    now: datetime,
    actor: Principal | None = None,
    seed: bytes | None = None,
    list_length: int = DEFAULT_LIST_LENGTH,
) -> Study:
    """Create a study and its allocation lists (audited). The seed is not kept."""
    validate_definition(arms, strata, block_sizes)
    exists = db.session.execute(
        sa.select(Study.id).where(Study.site_id == site_id, Study.key == key)
    ).first()
    if exists:
        raise Conflict(f"A study {key!r} already exists at this site.")
    seed = seed or secrets.token_bytes(32)
    study = Study(
        site_id=site_id,
        key=key,
        title=title,
        arms=list(arms),
        strata={k: list(v) for k, v in strata.items()},
        block_sizes=list(block_sizes),
        seed_sha256=hashlib.sha256(seed).hexdigest(),
        list_length=list_length,
        created_at=now,
        created_by_id=actor.id if actor and actor.is_staff else None,
    )
    db.session.add(study)
    db.session.flush()
    rows = [
        {
            "id": uuid.uuid4(),
            "study_id": study.id,
            "stratum": stratum,
            "position": position,
            "block": block,
            "block_size": size,
            "arm": arm,
        }
        for stratum in all_strata(strata)
        for position, block, size, arm in generate_list(
            seed, stratum, arms, block_sizes, list_length
        )
    ]
    db.session.execute(sa.insert(Allocation), rows)
    record(
        "research.study.created",
        now=now,
        actor=actor,
        actor_type=None if actor else "system",
        site_id=site_id,
        resource_type="research_study",
        resource_id=study.id,
        details={"key": key, "arms": list(arms), "strata": list(strata)},
    )
    return study


def get_study(principal: Principal, study_id: uuid.UUID) -> Study:
    study = db.session.get(Study, study_id)
    if study is None or study.site_id != principal.site_id:
        raise NotFound()
    return study


def _existing(study: Study, patient_id: uuid.UUID) -> Allocation | None:
    found: Allocation | None = db.session.execute(
        sa.select(Allocation).where(
            Allocation.study_id == study.id, Allocation.patient_id == patient_id
        )
    ).scalar_one_or_none()
    return found


def randomise(
    principal: Principal,
    study: Study,
    patient: Patient,
    values: Mapping[str, str],
    *,
    now: datetime,
) -> tuple[Allocation, bool]:
    """The patient's arm: the next slot of their stratum, once; (allocation, first time)."""
    from backend.research.services import may_be_included

    existing = _existing(study, patient.id)
    if existing is None:
        errors = [
            field_error(f"/strata/{name}", f"Must be one of: {', '.join(allowed)}.")
            for name, allowed in study.strata.items()
            if values.get(name) not in allowed
        ]
        errors += [
            field_error(f"/strata/{name}", "Not a stratification factor of this study.")
            for name in values
            if name not in study.strata
        ]
        if errors:
            raise ValidationProblem(errors)
        if not may_be_included(patient):
            raise Conflict("The patient has no research consent: randomise after consent.")
        existing = _take_next_slot(principal, study, patient, values, now)
        if existing is not None:
            return existing, True
        existing = _existing(study, patient.id)
        if existing is None:
            raise Conflict("The allocation list of this stratum is exhausted.")
    record(
        "research.randomisation.repeated",
        now=now,
        actor=principal,
        resource_type="research_study",
        resource_id=study.id,
        patient_id=patient.id,
    )
    return existing, False


def _take_next_slot(
    principal: Principal,
    study: Study,
    patient: Patient,
    values: Mapping[str, str],
    now: datetime,
) -> Allocation | None:
    """Claim the lowest free slot; None when another request randomised this patient first
    (or the list is exhausted: the caller tells them apart)."""
    stratum = stratum_key(study.strata, values)
    while True:
        slot_id = db.session.execute(
            sa.select(Allocation.id)
            .where(
                Allocation.study_id == study.id,
                Allocation.stratum == stratum,
                Allocation.patient_id.is_(None),
            )
            .order_by(Allocation.position)
            .limit(1)
        ).scalar_one_or_none()
        if slot_id is None:
            return None
        try:
            with db.session.begin_nested():
                taken = db.session.execute(
                    sa.update(Allocation)
                    .where(Allocation.id == slot_id, Allocation.patient_id.is_(None))
                    .values(patient_id=patient.id, allocated_at=now, allocated_by_id=principal.id)
                    .execution_options(synchronize_session=False)
                )
        except IntegrityError:
            return None  # this patient already holds a slot (a concurrent double click)
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            allocation = db.session.get(Allocation, slot_id, populate_existing=True)
            assert allocation is not None
            record(
                "research.randomisation.allocated",
                now=now,
                actor=principal,
                resource_type="research_study",
                resource_id=study.id,
                patient_id=patient.id,
                details={"stratum": stratum, "arm": allocation.arm},
            )
            return allocation
        # another patient took this slot meanwhile: the next one


def balance(study: Study) -> list[dict[str, Any]]:
    """Per stratum: randomised, per arm over completed blocks, and how many sit in the block in
    progress (never their arms)."""
    rows = db.session.execute(
        sa.select(Allocation.stratum, Allocation.block, Allocation.block_size, Allocation.arm)
        .where(Allocation.study_id == study.id, Allocation.patient_id.is_not(None))
        .order_by(Allocation.stratum, Allocation.position)
    ).all()
    out = []
    for stratum in all_strata(study.strata):
        mine = [r for r in rows if r.stratum == stratum]
        per_block: dict[int, list[Any]] = {}
        for r in mine:
            per_block.setdefault(r.block, []).append(r)
        complete = [b for b in per_block.values() if len(b) == b[0].block_size]
        arms = {arm: 0 for arm in study.arms}
        for block in complete:
            for r in block:
                arms[r.arm] += 1
        out.append(
            {
                "stratum": stratum,
                "randomised": len(mine),
                "arms_in_completed_blocks": arms,
                "in_block_in_progress": len(mine) - sum(len(b) for b in complete),
            }
        )
    return out
