"""Storage probes: pure parsers of what the sites and rclone answer.

- `parse_list_page`: one ListObjectsV2 page (as boto3 returns it) -> ObjectInfo. ETags are
  unquoted and lower-cased (rclone serve s3 lists them bare, HEAD returns them quoted).
- `parse_rclone_stats`: the last stats line of an rclone `--use-json-log` log -> CopyStats.
- `parse_state` / `replication_fresh`: the state file the replication loop rewrites after
  every pass -> when the last good pass started, and whether that is recent enough.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hapair.components.common import Check
from hapair.components.storage.backlog import ObjectInfo
from hapair.errors import StepFailed


def normalize_etag(raw: str) -> str:
    return raw.strip().strip('"').lower()


def parse_list_page(bucket: str, page: Mapping[str, Any]) -> list[ObjectInfo]:
    out = []
    for item in page.get("Contents") or []:
        modified = item.get("LastModified")
        if isinstance(modified, datetime):
            when = modified.timestamp()
        elif isinstance(modified, (int, float)):
            when = float(modified)
        else:
            raise StepFailed(f"{bucket}/{item.get('Key')}: LastModified {modified!r} unreadable")
        out.append(ObjectInfo(bucket, str(item["Key"]), int(item["Size"]),
                              normalize_etag(str(item.get("ETag", ""))), when))
    return out


@dataclass(frozen=True)
class CopyStats:
    bytes: int
    transfers: int  # objects copied
    checks: int  # objects found identical
    errors: int
    elapsed_s: float
    last_error: str = ""

    @property
    def rate_bps(self) -> float:
        return self.bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0


def parse_rclone_stats(log_text: str) -> CopyStats:
    """The last line carrying "stats" wins (rclone prints a final summary at exit)."""
    stats: dict[str, Any] | None = None
    for line in log_text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("stats"), dict):
            stats = doc["stats"]
    if stats is None:
        raise StepFailed("rclone printed no stats (did it start?)")
    return CopyStats(
        bytes=int(stats.get("bytes", 0)),
        transfers=int(stats.get("transfers", 0)),
        checks=int(stats.get("checks", 0)),
        errors=int(stats.get("errors", 0)),
        elapsed_s=float(stats.get("elapsedTime", 0.0)),
        last_error=str(stats.get("lastError", "")),
    )


@dataclass(frozen=True)
class ReplicationState:
    source: str
    target: str
    mode: str  # the last pass: "full" | "window"
    ok: bool
    started: int
    finished: int
    last_ok: int  # start of the last successful pass, 0 = none since the program started
    last_full_ok: int
    interval: int
    source_writer: bool | None = None  # the source took writes at the last pass (None: unknown)


def parse_state(text: str) -> ReplicationState:
    try:
        d = json.loads(text)
        return ReplicationState(
            source=str(d["source"]), target=str(d["target"]), mode=str(d["mode"]),
            ok=bool(d["ok"]), started=int(d["started"]), finished=int(d["finished"]),
            last_ok=int(d["last_ok"]), last_full_ok=int(d["last_full_ok"]),
            interval=int(d["interval"]),
            source_writer=bool(d["source_writer"]) if "source_writer" in d else None,
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise StepFailed(f"replication state file unreadable: {e}") from None


def replication_fresh(
    state: ReplicationState, *, now: float, source: str, max_lag_s: float
) -> Check:
    """Healthy when the loop pulls from `source` and its last good pass started at most
    `max_lag_s` ago: every object uploaded before that start (minus clock skew) is copied."""
    if state.source != source:
        return Check.failed(f"replication on {state.target} pulls from {state.source}, "
                            f"but {source} takes writes")
    if state.last_ok == 0:
        return Check.failed(f"replication into {state.target}: no successful pass yet "
                            f"(last {state.mode} pass {'ok' if state.ok else 'failed'})")
    lag = now - state.last_ok
    if lag > max_lag_s:
        return Check.failed(f"replication into {state.target}: last good pass {lag:.0f}s ago "
                            f"(limit {max_lag_s:.0f}s)")
    return Check.passed(f"replication {state.source}->{state.target}: last good pass "
                        f"{lag:.0f}s ago")
