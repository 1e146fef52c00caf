"""Pure metrics over request records: counts, error windows, write pause, recovery, latency.

Definitions (all times are the monotonic seconds stored in the records):

* A request SUCCEEDS when it got a 2xx/3xx answer with the expected body (records.classify);
  every other request FAILED: 4xx, 5xx, no answer (transport), wrong body (mismatch).
* ERROR WINDOW. Order the requests by their start time (ties: by end). A window opens at the
  start of a failed request that follows a successful one (or that is the first request of
  the run) and closes at the start of the next successful request. Start times are used on
  both sides because they say when the service was asked: a request that hangs until its
  timeout still marks the moment the service stopped answering. A window still open at the
  end closes at the last end time seen and is marked `recovered=False`.
  "Across ops" runs this over all requests (any success closes the window: the service
  answered someone); "per op" runs it over one operation's requests only (a write outage
  shows there even while reads keep succeeding).
* WRITE PAUSE: the longest interval without an acknowledged write. The instants are the end
  times of successful writes (when the client got the acknowledgement), bounded by the start
  of the first request and the end of the last one, so a run whose writes never come back
  shows its whole tail as a pause.
* RECOVERY AFTER t: from t to the end of the first successful write that STARTED at or after
  t (a write already in flight at t may have been served before the fault). None if none.
* LATENCY: p50/p99 (nearest rank) and max over successful requests only; failed requests'
  durations are mostly timeouts and say nothing about service speed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hapair.drill.records import FAILURES, OPS, Outcome, RequestRecord


@dataclass(frozen=True)
class ErrorWindow:
    op: str | None  # None: across all ops
    start: float
    end: float
    failures: int
    recovered: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Gap:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Latency:
    p50: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class OpStats:
    op: str
    requests: int
    ok: int
    by_outcome: dict[Outcome, int]  # failures only
    latency: Latency
    longest_error_window: ErrorWindow | None

    @property
    def failed(self) -> int:
        return self.requests - self.ok


@dataclass(frozen=True)
class FailureReason:
    op: str
    outcome: Outcome
    status: int | None
    error_class: str | None
    count: int
    example: str  # one record's detail


@dataclass(frozen=True)
class Metrics:
    requests: int
    ok: int
    by_outcome: dict[Outcome, int]  # failures only, every failure outcome present
    by_op: dict[str, OpStats]
    latency: Latency
    longest_error_window: ErrorWindow | None
    open_error_window: ErrorWindow | None  # the run ended while failing
    write_pause: Gap | None
    writes_ok: int
    first_start: float | None
    last_end: float | None
    reasons: list[FailureReason] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.requests - self.ok


def summarize(records: Iterable[RequestRecord]) -> Metrics:
    """All metrics of a run from its request records alone."""
    recs = sorted(records, key=lambda r: (r.start, r.end))
    by_op = {op: _op_stats(op, [r for r in recs if r.op == op]) for op in _ops_seen(recs)}
    windows = error_windows(recs)
    return Metrics(
        requests=len(recs),
        ok=sum(1 for r in recs if r.ok),
        by_outcome=_failure_counts(recs),
        by_op=by_op,
        latency=latency([r.latency for r in recs if r.ok]),
        longest_error_window=longest(windows),
        open_error_window=open_window(windows),
        write_pause=write_pause(recs),
        writes_ok=sum(1 for r in recs if r.is_write and r.ok),
        first_start=recs[0].start if recs else None,
        last_end=max(r.end for r in recs) if recs else None,
        reasons=failure_reasons(recs),
    )


def _ops_seen(recs: Sequence[RequestRecord]) -> list[str]:
    seen = {r.op for r in recs}
    known = [op for op in OPS if op in seen]
    return known + sorted(seen - set(OPS))


def _op_stats(op: str, recs: Sequence[RequestRecord]) -> OpStats:
    return OpStats(
        op=op,
        requests=len(recs),
        ok=sum(1 for r in recs if r.ok),
        by_outcome=_failure_counts(recs),
        latency=latency([r.latency for r in recs if r.ok]),
        longest_error_window=longest(error_windows(recs, op=op)),
    )


def _failure_counts(recs: Iterable[RequestRecord]) -> dict[Outcome, int]:
    counts = Counter(r.outcome for r in recs)
    return {o: counts.get(o, 0) for o in FAILURES}


def error_windows(records: Iterable[RequestRecord], op: str | None = None) -> list[ErrorWindow]:
    """Error windows as defined in the module docstring; `op` only labels the result."""
    recs = sorted(records, key=lambda r: (r.start, r.end))
    windows: list[ErrorWindow] = []
    opened: float | None = None
    failures = 0
    for rec in recs:
        if rec.ok:
            if opened is not None:
                windows.append(ErrorWindow(op, opened, rec.start, failures, True))
                opened, failures = None, 0
            continue
        if opened is None:
            opened = rec.start
        failures += 1
    if opened is not None:
        windows.append(ErrorWindow(op, opened, max(r.end for r in recs), failures, False))
    return windows


def longest(windows: Iterable[ErrorWindow]) -> ErrorWindow | None:
    return max(windows, key=lambda w: w.duration, default=None)


def open_window(windows: Sequence[ErrorWindow]) -> ErrorWindow | None:
    """The window the run ended in (not recovered), if any."""
    return windows[-1] if windows and not windows[-1].recovered else None


def write_pause(records: Iterable[RequestRecord]) -> Gap | None:
    recs = list(records)
    if not recs:
        return None
    acks = sorted(r.end for r in recs if r.is_write and r.ok)
    instants = [min(r.start for r in recs), *acks, max(r.end for r in recs)]
    gaps = (Gap(a, b) for a, b in zip(instants, instants[1:], strict=False))
    return max(gaps, key=lambda g: g.duration)


def recovery_after(records: Iterable[RequestRecord], t: float,
                   op: str | None = None) -> float | None:
    """Seconds from `t` to the end of the first successful write started after it (of `op`
    only, when given: e.g. article.create for the database's own recovery)."""
    ends = [r.end for r in records
            if r.is_write and r.ok and r.start >= t and (op is None or r.op == op)]
    return min(ends) - t if ends else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(values: Sequence[float]) -> Latency:
    if not values:
        return Latency()
    return Latency(percentile(values, 50), percentile(values, 99), max(values))


def failure_reasons(records: Iterable[RequestRecord]) -> list[FailureReason]:
    """Failures grouped by (op, outcome, status, error class), most frequent first."""
    groups: dict[tuple[str, Outcome, int | None, str | None], list[RequestRecord]] = {}
    for rec in records:
        if not rec.ok:
            groups.setdefault((rec.op, rec.outcome, rec.status, rec.error_class), []).append(rec)
    reasons = [
        FailureReason(op, outcome, status, err, len(recs), recs[0].detail)
        for (op, outcome, status, err), recs in groups.items()
    ]
    return sorted(reasons, key=lambda r: (-r.count, r.op, r.outcome.value))
