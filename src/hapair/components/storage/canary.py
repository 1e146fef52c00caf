"""Read-back verification: a canary written on one site must appear, byte for byte, on the
other. Nothing here trusts a status header or a replication counter: the bytes decide.

The wait is bounded; the reported delay is from the writer's acknowledgement to the first
read on the peer that returned the same bytes (polling every `interval_s`, so it overstates
the true delay by at most one interval). I/O is injected (`fetch`, clocks), so the logic is
tested without a server.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hapair.components.common import Check

PREFIX = "hapair-canary/"  # excluded from backlog reports; cleaned after each check


def canary_key(now: float, token: str) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{PREFIX}{stamp}-{token}.bin"


def canary_body(token: str, size: int) -> bytes:
    """Deterministic content from the token, `size` bytes: a wrong or stale copy differs."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{token}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@dataclass(frozen=True)
class ReadBack:
    key: str
    writer: str
    reader: str
    ok: bool
    delay_s: float | None  # acknowledgement -> matching read; None when it never matched
    attempts: int
    last_seen: str  # "absent" | "different (N bytes)" | "error: …" | "match"
    waited_s: float

    def check(self) -> Check:
        if self.ok:
            return Check.passed(f"canary written on {self.writer} read back on {self.reader} "
                                f"after {self.delay_s:.2f}s")
        return Check.failed(f"canary written on {self.writer} not readable intact on "
                            f"{self.reader} after {self.waited_s:.1f}s ({self.last_seen})")


Fetch = Callable[[], bytes | None]  # the object's bytes on the reader, None when absent


def read_back(
    key: str, writer: str, reader: str, expected: bytes, fetch: Fetch, *, acked_at: float,
    timeout_s: float, interval_s: float = 0.2,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> ReadBack:
    """Poll `fetch` until it returns `expected` or `timeout_s` passed since `acked_at`
    (a `clock()` reading). A fetch error is remembered and retried: a site that is briefly
    unreachable is a delay, not yet a failure."""
    attempts = 0
    last = "absent"
    while True:
        attempts += 1
        try:
            got = fetch()
        except Exception as exc:  # noqa: BLE001 - any client error is "not yet"
            got, last = None, f"error: {type(exc).__name__}: {exc}"
        else:
            if got is None:
                last = "absent"
            elif got == expected:
                now = clock()
                return ReadBack(key, writer, reader, True, now - acked_at, attempts, "match",
                                now - acked_at)
            else:
                last = f"different ({len(got)} bytes, expected {len(expected)})"
        now = clock()
        if now - acked_at >= timeout_s:
            return ReadBack(key, writer, reader, False, None, attempts, last, now - acked_at)
        sleep(min(interval_s, max(0.0, acked_at + timeout_s - now)))
