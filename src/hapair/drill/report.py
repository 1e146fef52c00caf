"""The drill report: one JSON-able document, and a rich rendering of it for humans.

All instants in the document are seconds since the start of the run (`*_s`); lost writes
also carry their wall-clock acknowledgement time. The verdict `ok` is true only when no
request failed and the checker found every acknowledged write intact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hapair.drill.checker import CheckResult, MissingWrite
from hapair.drill.load import LoadResult
from hapair.drill.metrics import ErrorWindow, Gap, Latency, Metrics, OpStats
from hapair.drill.records import FAILURES, ack_kind

MAX_REASONS = 20


@dataclass(frozen=True)
class DrillReport:
    result: LoadResult
    metrics: Metrics
    check: CheckResult | None
    faults: Mapping[str, float]  # name → monotonic instant of the fault

    @property
    def ok(self) -> bool:
        return self.metrics.failed == 0 and self.check is not None and self.check.ok

    @property
    def lost(self) -> int:
        return len(self.check.lost) if self.check else 0

    def summary(self) -> str:
        m, c = self.metrics, self.check
        writes = (
            f"{len(c.lost)} lost and {len(c.unverified)} unverified of {c.checked} checked writes"
            if c
            else "writes not checked"
        )
        return f"{m.failed} failed of {m.requests} requests; {writes}"

    def to_dict(self) -> dict[str, Any]:
        r, m = self.result, self.metrics
        rel = _Rel(r.started_mono)
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "run": _run(r),
            "requests": {"total": m.requests, "ok": m.ok, "failed": m.failed, **_outcomes(m)},
            "latency_ms": _latency(m.latency),
            "by_op": {op: _op(s, rel) for op, s in m.by_op.items()},
            "longest_error_window": _window(m.longest_error_window, rel),
            "open_error_window": _window(m.open_error_window, rel),
            "write_pause": _gap(m.write_pause, rel),
            "recovery": {
                name: {"fault_at_s": rel(t), "seconds": _round(r.recovery_after(t))}
                for name, t in self.faults.items()
            },
            "writes": _writes(r, self.check, rel),
            "failure_reasons": [
                {
                    "op": x.op,
                    "outcome": x.outcome.value,
                    "status": x.status,
                    "error": x.error_class,
                    "count": x.count,
                    "example": x.example,
                }
                for x in m.reasons[:MAX_REASONS]
            ],
        }


def build_report(
    result: LoadResult, check: CheckResult | None, faults: Mapping[str, float] | None = None
) -> DrillReport:
    return DrillReport(result, result.metrics(), check, dict(faults or {}))


# -- document parts ------------------------------------------------------------------------


class _Rel:
    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def __call__(self, t: float) -> float:
        return round(t - self.t0, 3)


def _round(x: float | None, factor: float = 1.0) -> float | None:
    return None if x is None else round(x * factor, 3)


def _run(r: LoadResult) -> dict[str, Any]:
    return {
        "id": r.run_id,
        "url": r.base_url,
        "seed": r.seed,
        "rate": r.config.rate,
        "workers": r.config.workers,
        "timeout_s": r.config.timeout,
        "started_at": r.started_wall.isoformat(),
        "elapsed_s": round(r.ended_mono - r.started_mono, 3),
        "stopped_by": r.stopped_by,
    }


def _outcomes(m: Metrics | OpStats) -> dict[str, int]:
    return {o.value: m.by_outcome.get(o, 0) for o in FAILURES}


def _latency(lat: Latency) -> dict[str, float | None]:
    ms = 1000.0
    return {"p50": _round(lat.p50, ms), "p99": _round(lat.p99, ms), "max": _round(lat.max, ms)}


def _op(s: OpStats, rel: _Rel) -> dict[str, Any]:
    return {
        "requests": s.requests,
        "ok": s.ok,
        "failed": s.failed,
        **_outcomes(s),
        "latency_ms": _latency(s.latency),
        "longest_error_window": _window(s.longest_error_window, rel),
    }


def _window(w: ErrorWindow | None, rel: _Rel) -> dict[str, Any] | None:
    if w is None:
        return None
    return {
        "op": w.op,
        "start_s": rel(w.start),
        "end_s": rel(w.end),
        "seconds": round(w.duration, 3),
        "failures": w.failures,
        "recovered": w.recovered,
    }


def _gap(g: Gap | None, rel: _Rel) -> dict[str, Any] | None:
    if g is None:
        return None
    return {"seconds": round(g.duration, 3), "from_s": rel(g.start), "to_s": rel(g.end)}


def _writes(r: LoadResult, c: CheckResult | None, rel: _Rel) -> dict[str, Any]:
    acked = Counter(ack_kind(a) for a in r.acks)
    doc: dict[str, Any] = {
        "acknowledged": {k: acked.get(k, 0) for k in ("article", "media", "session")},
        "acknowledged_total": sum(acked.values()),
        "checked": None,
        "verified": None,
        "lost": [],
        "unverified": [],
    }
    if c is not None:
        doc.update(
            checked=c.checked,
            verified=c.verified,
            lost=[_missing(x, r, rel) for x in c.lost],
            unverified=[_missing(x, r, rel) for x in c.unverified],
            check_rounds=c.rounds,
            check_seconds=round(c.seconds, 3),
        )
    return doc


def _missing(x: MissingWrite, r: LoadResult, rel: _Rel) -> dict[str, Any]:
    return {
        "kind": x.kind,
        "ref": x.ref,
        "what": x.what,
        "worker": x.worker,
        "acked_at_s": rel(x.acked_at),
        "acked_at": r.wall(x.acked_at).isoformat(),
        "reason": x.reason,
    }


# -- rendering -----------------------------------------------------------------------------


def render_table(doc: Mapping[str, Any], console: Console) -> None:
    """Draw a report document (DrillReport.to_dict()) for humans."""
    run = doc["run"]
    verdict = "[green]PASS[/green]" if doc["ok"] else "[red]FAIL[/red]"
    console.print(
        f"{verdict} drill {run['id']} against {escape(run['url'])} "
        f"({run['elapsed_s']}s, stopped by {run['stopped_by']}, seed {run['seed']}): "
        f"{doc['summary']}",
        highlight=False,
    )
    console.print(_ops_table(doc))
    console.print(_timing_table(doc))
    lost = doc["writes"]["lost"] + doc["writes"]["unverified"]
    if lost:
        console.print(_lost_table(doc))
    if doc["failure_reasons"]:
        console.print(_reasons_table(doc))


def _ops_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title="Requests", title_justify="left")
    for col in (
        "op",
        "requests",
        "failed",
        "4xx",
        "5xx",
        "transport",
        "mismatch",
        "p50 ms",
        "p99 ms",
        "error window",
    ):
        table.add_column(col, justify="left" if col == "op" else "right")
    rows = [(op, s) for op, s in doc["by_op"].items()]
    total = {
        **doc["requests"],
        "requests": doc["requests"]["total"],
        "latency_ms": doc["latency_ms"],
        "longest_error_window": doc["longest_error_window"],
    }
    for i, (name, s) in enumerate([*rows, ("all", total)]):
        table.add_row(
            name,
            str(s["requests"]),
            _red(s["failed"]),
            _red(s["http_4xx"]),
            _red(s["http_5xx"]),
            _red(s["transport"]),
            _red(s["mismatch"]),
            _num(s["latency_ms"]["p50"]),
            _num(s["latency_ms"]["p99"]),
            _win_short(s["longest_error_window"]),
            end_section=i == len(rows) - 1,
        )
    return table


def _timing_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title="Timing and writes", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("longest error window", _win(doc["longest_error_window"]))
    if doc["open_error_window"]:
        table.add_row("[red]ended while failing[/red]", _win(doc["open_error_window"]))
    pause = doc["write_pause"]
    if pause:
        span = f"+{pause['from_s']}s → +{pause['to_s']}s"
        table.add_row("write pause", f"{pause['seconds']}s ({span})")
    for name, rec in doc["recovery"].items():
        secs = rec["seconds"]
        shown = f"{secs}s" if secs is not None else "[red]no successful write after it[/red]"
        table.add_row(f"recovery after {name} (+{rec['fault_at_s']}s)", shown)
    w = doc["writes"]
    acked = ", ".join(f"{k} {v}" for k, v in w["acknowledged"].items())
    table.add_row("acknowledged writes", f"{w['acknowledged_total']} ({acked})")
    if w["checked"] is None:
        table.add_row("checked", "[red]not checked[/red]")
    else:
        # Sessions: one check per user, of the last value it had acknowledged.
        table.add_row("checked / verified", f"{w['checked']} / {w['verified']}")
        table.add_row("lost", _red(len(w["lost"])))
        table.add_row("unverified", _red(len(w["unverified"])))
    return table


def _lost_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title="Writes not found intact", title_justify="left")
    for col in ("verdict", "kind", "ref", "what", "acked at", "reason"):
        table.add_column(col)
    for verdict in ("lost", "unverified"):
        for x in doc["writes"][verdict]:
            when = f"+{x['acked_at_s']}s {x['acked_at']}"
            cells = (x["ref"], x["what"], when, x["reason"])  # server-chosen text: no markup
            table.add_row(verdict, x["kind"], *(escape(c) for c in cells))
    return table


def _reasons_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title="Failures by cause", title_justify="left")
    for col in ("count", "op", "outcome", "status", "error", "example"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for x in doc["failure_reasons"]:
        status = "" if x["status"] is None else str(x["status"])
        error = x["error"] or ""
        example = escape(x["example"])
        table.add_row(str(x["count"]), x["op"], x["outcome"], status, escape(error), example)
    return table


def _red(n: int) -> str:
    return f"[red]{n}[/red]" if n else "0"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _win_short(w: Mapping[str, Any] | None) -> str:
    if not w:
        return "-"
    return f"{w['seconds']}s" + ("" if w["recovered"] else " [red]open[/red]")


def _win(w: Mapping[str, Any] | None) -> str:
    if not w:
        return "-"
    tail = "" if w["recovered"] else ", not recovered"
    return f"{w['seconds']}s from +{w['start_s']}s ({w['failures']} failed{tail})"
