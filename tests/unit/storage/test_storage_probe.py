import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hapair.components.storage.probe import (
    ReplicationState,
    normalize_etag,
    parse_list_page,
    parse_rclone_stats,
    parse_state,
    replication_fresh,
)
from hapair.errors import StepFailed

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("raw", "etag"),
    [('"0CC175B9C0F1B6A831C399E269772661"', "0cc175b9c0f1b6a831c399e269772661"),
     ("0cc175b9c0f1b6a831c399e269772661", "0cc175b9c0f1b6a831c399e269772661"),
     ('"abc-12"', "abc-12")],
)
def test_normalize_etag(raw: str, etag: str) -> None:
    assert normalize_etag(raw) == etag


def test_parse_list_page() -> None:
    when = datetime(2026, 11, 26, 1, 41, 44, tzinfo=UTC)
    page = {"Contents": [
        {"Key": "a b/ü.txt", "Size": 6, "ETag": '"B1946AC92492D2347C6235B4D2611184"',
         "LastModified": when},
    ]}
    (o,) = parse_list_page("media-public", page)
    assert (o.bucket, o.key, o.size, o.etag, o.last_modified) == (
        "media-public", "a b/ü.txt", 6, "b1946ac92492d2347c6235b4d2611184", when.timestamp())
    assert o.md5 == o.etag
    assert parse_list_page("media-public", {"KeyCount": 0}) == []
    with pytest.raises(StepFailed, match="LastModified"):
        parse_list_page("b", {"Contents": [{"Key": "k", "Size": 1, "LastModified": "x"}]})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rclone_seed_ok.log", (100000000, 1000, 0, 0, "")),
        ("rclone_missing_bucket.log", (0, 0, 0, 1, "directory not found")),
    ],
)
def test_parse_rclone_stats(name: str, expected: tuple[object, ...]) -> None:
    s = parse_rclone_stats((DATA / name).read_text())
    assert (s.bytes, s.transfers, s.checks, s.errors, s.last_error) == expected
    assert s.elapsed_s > 0


def test_parse_rclone_stats_without_stats() -> None:
    with pytest.raises(StepFailed, match="no stats"):
        parse_rclone_stats('not json\n{"level":"error","msg":"boom"}\n')


STATE = {"source": "node1", "target": "node2", "mode": "window", "ok": True,
         "started": 1000, "finished": 1001, "last_ok": 1000, "last_full_ok": 900,
         "interval": 5}


def test_parse_state() -> None:
    assert parse_state(json.dumps(STATE)) == ReplicationState(**STATE)  # type: ignore[arg-type]
    with pytest.raises(StepFailed, match="unreadable"):
        parse_state('{"source": "node1"}')
    with pytest.raises(StepFailed, match="unreadable"):
        parse_state("")


# (state overrides, now, writer, ok, reason)
FRESH = [
    ({}, 1010.0, "node1", True, "replication node1->node2: last good pass 10s ago"),
    ({}, 1100.0, "node1", False, "replication into node2: last good pass 100s ago (limit 60s)"),
    ({}, 1010.0, "node2", False, "replication on node2 pulls from node1, but node2 takes writes"),
    ({"last_ok": 0, "ok": False, "mode": "full"}, 1010.0, "node1", False,
     "replication into node2: no successful pass yet (last full pass failed)"),
]


@pytest.mark.parametrize(("over", "now", "writer", "ok", "reason"), FRESH)
def test_replication_fresh(over: dict[str, object], now: float, writer: str, ok: bool,
                           reason: str) -> None:
    state = ReplicationState(**{**STATE, **over})  # type: ignore[arg-type]
    check = replication_fresh(state, now=now, source=writer, max_lag_s=60)
    assert (check.ok, check.reason) == (ok, reason)
