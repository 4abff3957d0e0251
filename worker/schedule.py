"""When to poll a source next: its interval with jitter (only ever later); after failures,
exponential backoff (interval × 2^(failures−1), at most a day); never sooner than the server's
Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(hours=24)
SEED_INTERVAL = timedelta(minutes=1)   # seed folders are read again this often (and on change)
JITTER = 0.1                        # up to this share of the delay is added …
MAX_JITTER = timedelta(minutes=5)   # … but never more than this


def next_poll(now: datetime, interval: timedelta, failures: int,
              retry_after: timedelta | None = None,
              rand: Callable[[], float] = random.random) -> datetime:
    """The time of the next poll of a source polled at *now* that has failed *failures* times
    in a row (0 after a success)."""
    backoff = min(interval * 2 ** min(max(failures - 1, 0), 32), MAX_BACKOFF)
    delay = interval if failures <= 0 else backoff
    spread = min(delay * JITTER, MAX_JITTER)
    # Spread sources out so they do not poll in step; only ever later, so a source is never
    # polled sooner than its interval.
    delay += spread * rand()
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + delay
