"""Which backups `--keep N` removes on one node. Pure: entries in, decisions with reasons out.

- The newest N complete backups of the kind stay.
- The newest backup whose verification passed stays too, even beyond N: pruning must never
  leave only unverified backups behind.
- A complete directory whose manifest cannot be read stays (it is shown by `backup list`):
  hapair does not delete what it cannot identify.
- An `<id>.partial` directory older than STALE_PARTIAL is the leftover of an interrupted run
  and goes; a younger one may be a backup in progress and stays.
- Other kinds and directories that are not backups are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hapair.workflows.backup.model import BackupEntry, Kind, newest_first

STALE_PARTIAL = timedelta(hours=24)


@dataclass(frozen=True)
class Verdict:
    entry: BackupEntry
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    node: str
    kind: Kind
    keep: int
    delete: tuple[Verdict, ...]
    kept: tuple[Verdict, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "node": self.node,
            "kind": self.kind,
            "keep": self.keep,
            "delete": [{"id": v.entry.id, "path": v.entry.path, "reason": v.reason}
                       for v in self.delete],
            "kept": [{"id": v.entry.id, "reason": v.reason} for v in self.kept],
        }


def plan_retention(
    node: str,
    entries: Sequence[BackupEntry],
    kind: Kind,
    keep: int,
    now: datetime,
    *,
    pending: int = 0,
) -> RetentionPlan:
    """`pending`: newer backups about to exist (a dry run counts the one it would take)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    mine = newest_first([e for e in entries if e.kind == kind and e.node == node])
    complete = [e for e in mine if e.complete and e.manifest is not None]
    newest_verified = next((e for e in complete if e.verified_ok), None)
    delete: list[Verdict] = []
    kept: list[Verdict] = []
    for rank, e in enumerate(complete):
        if rank < keep - pending:
            kept.append(Verdict(e, f"among the newest {keep} {kind} backups"))
        elif e is newest_verified:
            kept.append(Verdict(e, "the newest verified backup is always kept"))
        else:
            delete.append(Verdict(e, f"older than the newest {keep} {kind} backups"))
    for e in mine:
        if e.complete and e.manifest is None:
            kept.append(Verdict(e, f"manifest unreadable ({e.problem}): left for a human"))
        elif not e.complete and now - e.taken_at > STALE_PARTIAL:
            delete.append(Verdict(e, "incomplete: left by an interrupted run over 24 h ago"))
        elif not e.complete:
            kept.append(Verdict(e, "incomplete and recent: may be a backup in progress"))
    return RetentionPlan(node, kind, keep, tuple(delete), tuple(kept))
