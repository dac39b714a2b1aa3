"""The ordered answer scales shared by the instruments, the procedure's baseline, the rules and
the research export: decided here once (pure, no imports of the application).

The order is the clinical scale: an index is the level the rules and the scores compare.
The instruments' options (``data/*.json``) list the same values (a test checks it).
"""

from __future__ import annotations

ANALGESIC_STEPS = ("none", "non_opioid", "weak_opioid", "strong_opioid")  # WHO steps 0-3
AID_LEVELS = ("none", "cane", "crutches", "walker", "human_help", "unable")  # levels 0-5
