"""Client-side run ids: UUIDv7 (RFC 9562), so that a retried create finds the same run."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

__all__ = ["new_run_id", "RUN_ID_PATTERN"]

#: Run ids: 1–128 of letters, digits and ``._:@+-`` (the server's rule).
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def new_run_id() -> str:
    """A new time-ordered UUIDv7.

    Ids made in one process sort in creation order even within one millisecond: the
    12-bit ``rand_a`` field is a counter seeded randomly each millisecond (RFC 9562
    method 1), and a counter overflow borrows the next millisecond.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            # Seed in the lower half so that many ids fit before an overflow.
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
