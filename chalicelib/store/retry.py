"""The one retry helper: re-read, decide again, write, a bounded number of times.

Every loop that loses a conditional write (``ConflictError``) goes through ``retried`` with the
one budget, ``CONFLICT_ATTEMPTS``: incidents, the playbook envelope's action log, API tokens.
Conflicts clear in milliseconds, so 25 short jittered pauses cost little and outlast any
realistic pile-up of workers on one record; past that the caller gets a ``ConflictError``
saying what kept changing (the API answers 409, a Lambda retries).

Two other waits use the same helper with their own budget, because what they wait for is not
a lost race: a DynamoDB transaction cancelled for a passing reason (throttling) is tried
``TRANSIENT_ATTEMPTS`` times, then left to the Lambda's own retries; the CLI's replay waits out
another process's delivery lease. ``pause`` is injected so tests never sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from chalicelib.errors import ConflictError

T = TypeVar("T")
Pause = Callable[[int], None]

CONFLICT_ATTEMPTS = 25  # the budget for a lost conditional write (see above)
TRANSIENT_ATTEMPTS = 4  # a throttled or cancelled AWS write; beyond this the Lambda retries


def backoff(attempt: int) -> None:
    # Conflicts clear in milliseconds; jitter keeps racing workers from colliding in lockstep.
    time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))


def retried(attempt: Callable[[], T], *, what: str, attempts: int = CONFLICT_ATTEMPTS, pause: Pause = backoff,
            retry_on: tuple[type[Exception], ...] = (ConflictError,)) -> T:
    """``attempt()`` until it returns, retrying on ``retry_on`` at most ``attempts`` times in all.

    When every attempt lost, a ``ConflictError`` says ``what`` kept changing; any other
    retried exception is raised as it was last seen.
    """
    for n in range(attempts):
        if n:
            pause(n)
        try:
            return attempt()
        except retry_on as exc:
            if n == attempts - 1:
                if isinstance(exc, ConflictError):
                    raise ConflictError(f"{what} kept changing; try again") from exc
                raise
    raise ValueError("attempts must be at least 1")
