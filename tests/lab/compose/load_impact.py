"""What a load through the app saw while an operation ran (pure): counts, the longest runs of
failures (all operations together, and per operation), and where the operation's own steps
fell on the load's clock. Used by bench/upgrade-compose.

Times are seconds after `t0`, the monotonic instant the operation started (the load's
records use the same clock); steps carry wall-clock ISO times, placed with `t0_wall`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from hapair.drill.metrics import ErrorWindow, summarize
from hapair.drill.records import (
    ARTICLE_CREATE,
    ARTICLE_LIST,
    ARTICLE_READ,
    SESSION_READ,
    SESSION_WRITE,
    RequestRecord,
)

# Database writes and reads, Redis (session) writes and reads: no media (each node's S3
# stand-in is its own, unreplicated) and no frontend (the stack has none).
MIX: dict[str, int] = {ARTICLE_CREATE: 4, ARTICLE_READ: 3, ARTICLE_LIST: 1, SESSION_WRITE: 2,
                       SESSION_READ: 2}
# The steps between the stop of the user's Redis and the app recreated behind the router.
HANDOVER_FIRST, HANDOVER_LAST = "compose.redis-handover", "compose.app-repoint"


def window(w: ErrorWindow | None, t0: float) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"seconds": round(w.duration, 2), "from_s": round(w.start - t0, 2),
            "to_s": round(w.end - t0, 2), "failures": w.failures, "recovered": w.recovered}


def impact(records: Iterable[RequestRecord], t0: float) -> dict[str, Any]:
    m = summarize(records)
    by_op = {op: window(s.longest_error_window, t0) for op, s in sorted(m.by_op.items())}
    longest_one_kind = max((w for w in by_op.values() if w), key=lambda w: w["seconds"],
                           default=None)
    return {
        "requests": m.requests,
        "failed": m.failed,
        "failed_by_kind": {o.value: c for o, c in m.by_outcome.items() if c},
        "longest_failure_run": window(m.longest_error_window, t0),
        "longest_failure_run_of_one_op": longest_one_kind,
        "longest_failure_run_by_op": by_op,
        "still_failing_at_end": window(m.open_error_window, t0),
        "write_pause_s": round(m.write_pause.duration, 2) if m.write_pause else None,
        "failure_reasons": [f"{r.count}× {r.op} {r.outcome.value} {r.status or ''} "
                            f"{r.error_class or ''}: {r.example}"[:200]
                            for r in m.reasons[:8]],
    }


def step_name(step_id: str) -> str:
    """"upgrade-compose/node1/compose.router" → "compose.router" (the last part)."""
    return step_id.rsplit("/", 1)[-1]


def step_times(steps: Sequence[dict[str, Any]], t0_wall: datetime
               ) -> list[dict[str, Any]]:
    """Each step run (not skipped) with its host and start/end in seconds after t0_wall."""
    out = []
    for s in steps:
        if not s.get("start") or not s.get("end"):
            continue
        start = (datetime.fromisoformat(s["start"]) - t0_wall).total_seconds()
        end = (datetime.fromisoformat(s["end"]) - t0_wall).total_seconds()
        out.append({"step": step_name(s["step"]), "host": s.get("host"),
                    "result": s.get("result"), "from_s": round(start, 2),
                    "to_s": round(end, 2)})
    return out


def handover(times: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """From the start of the Redis hand-over to the end of the app's re-pointing on node1:
    the span during which the app's Redis and database calls can fail (docs/compose.md)."""
    first = [t for t in times if t["step"] == HANDOVER_FIRST]
    last = [t for t in times if t["step"] == HANDOVER_LAST]
    if not first or not last:
        return None
    start, end = first[0]["from_s"], last[-1]["to_s"]
    return {"from_s": start, "to_s": end, "seconds": round(end - start, 2)}
