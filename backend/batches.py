"""What every batch job (a scheduler pass's unit of work) does with a row it cannot handle.

One bad row (a text key an older process does not know yet during a rolling deploy, a bug) must
not block the rows behind it: it is logged and postponed by ``POISON_DELAY``, then tried again.
The reminder job and the outbox's claim both follow it.
"""

from __future__ import annotations

from datetime import timedelta

POISON_DELAY = timedelta(minutes=30)
