"""A Lambda cold start runs without the cyclic garbage collector while it loads.

Importing the handlers (pydantic builds every model class) and building a botocore client make
some 80,000 container objects that live as long as the process. CPython's collector, triggered
every 700 new ones, walks them again and again and frees nothing: a fifth to a quarter of the
first event's import CPU (``bench/coldstart.py``). ``loading()`` turns the collector off for
such a stretch; at its end everything made so far is frozen (``gc.freeze``: later collections
skip it) and the collector runs again for the objects events make. Stdlib only: ``app.py`` uses it.

Only inside Lambda (``AWS_LAMBDA_FUNCTION_NAME``): a test run or the CLI keeps the default collector.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager


def in_lambda() -> bool:
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def pause() -> bool:
    """Stop the collector for what follows; True if this call stopped it (then ``resume``)."""
    if not in_lambda() or not gc.isenabled():
        return False  # not in Lambda, or an outer stretch has it stopped already
    gc.disable()
    return True


def resume(paused: bool) -> None:
    if paused:
        gc.freeze()  # what was loaded lives as long as the process: no collection needs to walk it
        gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    paused = pause()
    try:
        yield
    finally:
        resume(paused)
