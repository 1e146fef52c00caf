"""`--keep N` selection: table-driven over directory listings of one node."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hapair.workflows.backup.model import BackupEntry, FileEntry, Manifest, entry_from_name
from hapair.workflows.backup.retention import plan_retention

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


def _entry(name: str, verified: str | None = None, unreadable: bool = False,
           node: str = "node1") -> BackupEntry:
    """'d1' -> the logical backup of March 1st (d<day>[p] with p = physical, '.partial')."""
    partial = name.endswith(".partial")
    base = name.removesuffix(".partial")
    kind = "physical" if base.endswith("p") else "logical"
    day = int(base.strip("dp"))
    dirname = f"202503{day:02d}T021500Z-{kind}" + (".partial" if partial else "")
    e = entry_from_name(node, "/b", dirname)
    assert e is not None
    if partial or unreadable:
        return e if not unreadable else BackupEntry(**{**e.__dict__, "problem": "bad JSON"})
    m = Manifest(id=e.id, kind=e.kind, cluster="cms", source={}, postgres={},
                 files=(FileEntry("x", 1, "0" * 64),), started_at="", finished_at="", tools={},
                 verification={"result": verified} if verified else None)
    return BackupEntry(**{**e.__dict__, "manifest": m})


def _ids(names: list[str]) -> list[str]:
    return [_entry(n).id for n in names]


CASES = [
    # (listing, keep, pending, deleted, why)
    (["d1", "d2", "d3"], 3, 0, [], "exactly N: nothing to delete"),
    (["d1", "d2", "d3", "d4"], 2, 0, ["d2", "d1"], "the oldest go"),
    (["d1", "d2", "d3", "d4"], 2, 1, ["d3", "d2", "d1"], "a dry run counts the coming backup"),
    (["d1", "d2", "d3p", "d4p", "d5"], 1, 0, ["d2", "d1"], "physical ones are another kind"),
    (["d1:passed", "d2", "d3", "d4"], 2, 0, ["d2"], "the newest verified one stays"),
    (["d1:passed", "d2:passed", "d3", "d4"], 2, 0, ["d1"], "only the NEWEST verified one"),
    (["d1:failed", "d2", "d3"], 1, 0, ["d2", "d1"], "a failed verification protects nothing"),
    (["d1!", "d2", "d3"], 1, 0, ["d2"], "an unreadable manifest is left for a human"),
    (["d1.partial", "d9.partial", "d8"], 1, 0, ["d1.partial"], "stale partials go, fresh stay"),
]


@pytest.mark.parametrize(("listing", "keep", "pending", "deleted", "why"), CASES,
                         ids=[c[4] for c in CASES])
def test_plan(listing: list[str], keep: int, pending: int, deleted: list[str], why: str) -> None:
    entries = []
    for item in listing:
        name, _, verdict = item.partition(":")
        entries.append(_entry(name.rstrip("!"), verified=verdict or None,
                              unreadable=name.endswith("!")))
    plan = plan_retention("node1", entries, "logical", keep, NOW, pending=pending)
    assert [v.entry.path.rsplit("/", 1)[1] for v in plan.delete] == [
        _entry(d).path.rsplit("/", 1)[1] for d in deleted
    ]
    # everything of the kind is either deleted or kept, with a reason
    logical = [e for e in entries if e.kind == "logical"]
    assert len(plan.delete) + len(plan.kept) == len(logical)
    assert all(v.reason for v in (*plan.delete, *plan.kept))


def test_reasons() -> None:
    entries = [_entry("d1", verified="passed"), _entry("d2"), _entry("d3"), _entry("d4")]
    plan = plan_retention("node1", entries, "logical", 2, NOW)
    assert {v.entry.id: v.reason for v in plan.kept} == {
        "20250304T021500Z-logical": "among the newest 2 logical backups",
        "20250303T021500Z-logical": "among the newest 2 logical backups",
        "20250301T021500Z-logical": "the newest verified backup is always kept",
    }
    assert [(v.entry.id, v.reason) for v in plan.delete] == [
        ("20250302T021500Z-logical", "older than the newest 2 logical backups")
    ]


def test_other_nodes_entries_are_not_considered() -> None:
    entries = [_entry("d1", node="node2"), _entry("d2", node="node2"), _entry("d3")]
    assert plan_retention("node1", entries, "logical", 1, NOW).delete == ()


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError):
        plan_retention("node1", [], "logical", 0, NOW)
