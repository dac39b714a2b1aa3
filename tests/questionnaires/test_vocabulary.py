"""The ordered answer scales have one owner, and the instruments' options list the same values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.questionnaires.vocabulary import AID_LEVELS, ANALGESIC_STEPS

DATA = Path(__file__).resolve().parents[2] / "backend" / "questionnaires" / "data"


@pytest.mark.parametrize("instrument", ["checkin.v1.json", "followup.v1.json"])
def test_every_instruments_options_are_the_shared_scales_in_their_order(instrument):
    items = {item["id"]: item for item in json.loads((DATA / instrument).read_text())["items"]}
    assert [o["value"] for o in items["analgesics"]["options"]] == list(ANALGESIC_STEPS)
    assert [o["value"] for o in items["walking_aid"]["options"]] == list(AID_LEVELS)
