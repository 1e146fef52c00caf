"""Backup ids, the manifest's JSON form, row-count comparison, human rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hapair.errors import UsageError
from hapair.workflows.backup import render
from hapair.workflows.backup.model import (
    FORMAT,
    Manifest,
    compare_counts,
    entry_from_name,
    fmt_bytes,
    new_id,
    parse_id,
    require_id,
    scratch_db_name,
)

MANIFEST = {
    "format": FORMAT,
    "id": "20250301T021500Z-logical",
    "kind": "logical",
    "cluster": "cms",
    "source": {"node": "node2", "role": "standby", "reason": "r", "lag_bytes": 0,
               "facts_from": "Patroni /cluster (asked on node1)", "pair": "p"},
    "postgres": {"server_version": "15.14", "server_version_num": 150014},
    "database": {"name": "cms", "owner": "cms", "encoding": "UTF8", "collate": "C",
                 "ctype": "C"},
    "snapshot": "00000003-0000001B-1",
    "files": [{"name": "cms.dump", "bytes": 1000, "sha256": "a" * 64},
              {"name": "globals.sql", "bytes": 24, "sha256": "b" * 64}],
    "size_bytes": 1024,
    "tables": [{"schema": "public", "table": "articles", "rows": 500}],
    "wal": None,
    "started_at": "2025-03-01T02:15:00Z",
    "finished_at": "2025-03-01T02:15:09Z",
    "tools": {"pg_dump": "pg_dump (PostgreSQL) 15.14", "hapair": "0.1.0"},
    "excluded": ["x"],
    "verification": None,
}


def test_ids() -> None:
    t = datetime(2025, 3, 1, 3, 15, tzinfo=timezone(timedelta(hours=1)))
    assert new_id("logical", t) == "20250301T021500Z-logical"  # always UTC
    assert parse_id("20250301T021500Z-physical") == (
        datetime(2025, 3, 1, 2, 15, tzinfo=UTC), "physical")
    for bad in ("latest", "20250301T021500Z-logical.partial", "../etc", "20250301-logical"):
        assert parse_id(bad) is None
    with pytest.raises(UsageError):
        require_id("../../etc")
    assert scratch_db_name("20250301T021500Z-logical") == "hapair_verify_20250301t021500z_logical"


def test_entry_from_name() -> None:
    e = entry_from_name("node1", "/b/", "20250301T021500Z-logical.partial")
    assert e is not None and not e.complete and e.path == "/b/20250301T021500Z-logical.partial"
    assert e.id == "20250301T021500Z-logical"
    assert entry_from_name("node1", "/b", "lost+found") is None


def test_manifest_round_trip_keeps_unknown_keys() -> None:
    data = {**MANIFEST, "added_later": {"x": 1}}
    m = Manifest.from_dict(data)
    assert m.size_bytes == 1024
    assert m.row_counts() == {"public.articles": 500}
    assert m.to_dict() == data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"format": "other/1"}, "format"),
        ({"kind": "incremental"}, "kind"),
        ({"id": "x"}, "backup id"),
        ({"files": [{"name": "a"}]}, "missing or malformed"),
    ],
)
def test_manifest_rejects(change: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Manifest.from_dict({**MANIFEST, **change})


def test_compare_counts() -> None:
    assert compare_counts({"a.x": 1}, {"a.x": 1}) == []
    assert compare_counts({"a.x": 1, "a.y": 2, "a.z": 0}, {"a.x": 0, "a.w": 5, "a.z": 0}) == [
        "a.w: restored (5 rows) but not in the backup's manifest",
        "a.x: 1 rows in the backup, 0 after restore",
        "a.y: in the backup (2 rows) but missing after restore",
    ]


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "unknown"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
     (16 * 1024 * 1024, "16.0 MiB"), (5 * 1024**5, "5120.0 TiB")],
)
def test_fmt_bytes(n: int | None, text: str) -> None:
    assert fmt_bytes(n) == text


def test_render_list_and_verify() -> None:
    e = entry_from_name("node2", "/b", "20250301T021500Z-logical")
    assert e is not None
    from dataclasses import replace

    e = replace(e, manifest=Manifest.from_dict(MANIFEST))
    lines = render.list_lines({"backups": [e.summary()], "warnings": ["node1: unreachable"]})
    assert lines == [
        "ID                        NODE   SIZE     SOURCE   TABLES  VERIFIED  NOTE",
        "20250301T021500Z-logical  node2  1.0 KiB  standby  1       never",
        "warning: node1: unreachable",
    ]
    verdict = {"result": "failed", "method": "m", "problems": ["public.a: 1 rows in the "
               "backup, 0 after restore"], "scratch_database": "s", "restored_on": "node1",
               "tables_compared": 1}
    assert render.verify_lines({"id": e.id, "kind": "logical", "node": "node2",
                                "verification": verdict}) == [
        "backup 20250301T021500Z-logical (logical, on node2): verification FAILED",
        "  method     m",
        "  scratch    s on node1 (dropped)",
        "  compared   1 tables",
        "  problem    public.a: 1 rows in the backup, 0 after restore",
    ]
