"""Object storage in status/check (observe/storage.py): the pure parts, table-driven — sites
compared, checks from a snapshot, status lines — and gather_storage over fakes."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from hapair.components.common import Plain
from hapair.components.storage.backlog import ObjectInfo, consistency_check, index, settled
from hapair.components.storage.backlog import compare as compare_listings
from hapair.components.storage.canary import ReadBack
from hapair.components.storage.site import S3Credentials, Site
from hapair.observe.checks import run_checks
from hapair.observe.snapshot import Fact, plain
from hapair.observe.storage import (
    CanarySeen,
    LoopSeen,
    NodeStorage,
    StorageNodeTarget,
    StorageSnapshot,
    StorageTargets,
    find_writer,
    gather_storage,
    sites_compared,
    status_lines,
    storage_checks,
)
from hapair.workflows.storage import StorageSetup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observe"))
from observe_fakes import healthy  # noqa: E402

NOW = 10_000.0
SETUP = StorageSetup("s3", ("media-public",), S3Credentials(Plain("AK"), Plain("SK")),
                     max_delay_s=30.0)
S1, S2 = Site("node1", "10.99.0.11"), Site("node2", "10.99.0.12")
TARGETS = StorageTargets(SETUP, (
    StorageNodeTarget("node1", S1, "http://10.99.0.11:8008/primary", "/run/w.sock", "/s.json"),
    StorageNodeTarget("node2", S2, "http://10.99.0.12:8008/primary", "/run/w.sock", "/s.json"),
))
MD5 = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def obj(key: str, age: float, size: int = 10, etag: str = MD5) -> ObjectInfo:
    return ObjectInfo("media-public", key, size, etag, NOW - age)


# --- comparing listings: backlog vs settled (older than the delay) ------------------------------

CASES: list[tuple[str, list[ObjectInfo], list[ObjectInfo], list[tuple[str, str]], int]] = [
    # name, writer, other, settled problems (key, problem), backlog size
    ("identical", [obj("a", 100)], [obj("a", 90)], [], 0),
    ("young missing is backlog only", [obj("a", 5)], [], [], 1),
    ("old missing", [obj("a", 100)], [], [("a", "missing")], 1),
    ("corrupt same size", [obj("a", 100)], [obj("a", 100, etag=OTHER)], [("a", "md5")], 1),
    ("truncated", [obj("a", 100, size=10)], [obj("a", 100, size=3)], [("a", "size")], 1),
    ("multipart compared by size", [obj("a", 100, etag="abc-2")], [obj("a", 100)], [], 0),
    ("only on other is no problem", [], [obj("a", 100)], [], 0),
    ("canaries ignored", [obj("hapair-canary/x.bin", 100)], [], [], 0),
    ("boundary: exactly the delay", [obj("a", 30)], [], [("a", "missing")], 1),
]


@pytest.mark.parametrize(("name", "w", "o", "problems", "backlog"), CASES,
                         ids=[c[0] for c in CASES])
def test_sites_compared(name: str, w: list[ObjectInfo], o: list[ObjectInfo],
                        problems: list[tuple[str, str]], backlog: int) -> None:
    got = sites_compared("node1", index(w), "node2", index(o), now=NOW, max_delay_s=30.0)
    assert [(p.key, p.problem) for p in got.settled] == problems
    assert got.backlog_objects == backlog


def test_compared_counts_and_ages() -> None:
    w = index([obj("a", 100, size=7), obj("b", 50, size=5), obj("c", 3, size=1)])
    o = index([obj("a", 100, size=7), obj("z", 400)])
    got = sites_compared("node1", w, "node2", o, now=NOW, max_delay_s=30.0)
    assert (got.writer_objects, got.other_objects, got.only_on_other) == (3, 2, 1)
    assert (got.backlog_objects, got.backlog_bytes, got.oldest_age_s) == (2, 6, 50.0)
    assert [(p.key, p.age_s) for p in got.settled] == [("b", 50.0)]


def test_settled_and_consistency_check_name_objects() -> None:
    b = compare_listings("node2", index([obj(f"k{i}", 100) for i in range(12)]), "node1", {},
                         now=NOW)
    old = settled(b, now=NOW, min_age_s=30)
    check = consistency_check("node2", "node1", [(d.bucket, d.key, d.problem)
                                                 for d in old.differences],
                              compared=0, size_only=0, min_age_s=30, show=2)
    assert not check.ok
    assert check.reason == ("node1 lacks or differs on 12 object(s) of node2 older than 30s: "
                            "media-public/k0 (missing), media-public/k1 (missing) and 10 more")


# --- checks from a snapshot ------------------------------------------------------------------


def loop(source: str, target: str, age: float | None = 3.0, writer: bool | None = True
         ) -> Fact[LoopSeen]:
    return Fact(LoopSeen(source, target, True, "window", age, writer))


def good() -> StorageSnapshot:
    comp = sites_compared("node1", index([obj("a", 100)]), "node2", index([obj("a", 100)]),
                          now=NOW, max_delay_s=30.0)
    return StorageSnapshot(
        "s3", 30.0, 5, Fact("node1"),
        (NodeStorage("node1", Fact(("node1",)), loop("node2", "node1", writer=False)),
         NodeStorage("node2", Fact(("node1",)), loop("node1", "node2"))),
        Fact(comp), Fact(CanarySeen("node1", "node2", True, 2.5, "match", 2.5)))


def checks(snap: StorageSnapshot | Fact[StorageSnapshot]) -> dict[str, tuple[bool, str]]:
    fact = snap if isinstance(snap, Fact) else Fact(snap)
    s = dataclasses.replace(healthy(), storage=fact)
    return {name: (c.ok, c.reason) for name, c, _sev, _node in storage_checks(s)}


def test_healthy_storage_passes_every_check() -> None:
    got = checks(good())
    assert sorted(got) == ["storage.canary", "storage.consistency", "storage.replication.node1",
                           "storage.replication.node2", "storage.routes.node1",
                           "storage.routes.node2"]
    assert all(ok for ok, _ in got.values()), got
    assert got["storage.canary"][1] == ("canary written on node1 read back intact on node2 "
                                        "after 2.50s (limit 30s)")
    assert got["storage.replication.node1"][1] == ("replication node2->node1 (add only): last "
                                                   "good pass 3s ago")


def _node(i: int, **kw: Any) -> Any:
    return lambda s: dataclasses.replace(s, nodes=tuple(
        dataclasses.replace(n, **kw) if j == i else n for j, n in enumerate(s.nodes)))


BROKEN: list[tuple[str, Any, str, str]] = [
    ("writes still to the dead writer", _node(1, writes_to=Fact(("node2",))),
     "storage.routes.node2", "uploads on node2 go to node2, expected node1's site only"),
    ("no site takes writes", _node(0, writes_to=Fact(())), "storage.routes.node1",
     "uploads on node1 go to no site, expected node1's site only"),
    ("selector not answering", _node(0, writes_to=Fact(error="no socket")),
     "storage.routes.node1", "write selector on node1: no socket"),
    ("loop stale", _node(1, loop=loop("node1", "node2", age=500.0)),
     "storage.replication.node2",
     "replication node1->node2 (from the writer): last good pass 500s ago (limit 75s)"),
    ("loop never passed", _node(1, loop=loop("node1", "node2", age=None)),
     "storage.replication.node2",
     "replication node1->node2: no good pass since the loop started (last window pass ok)"),
    ("canary late", lambda s: dataclasses.replace(s, canary=Fact(CanarySeen(
        "node1", "node2", False, None, "absent", 30.1))), "storage.canary",
     "canary written on node1 not read back intact on node2 within 30s (absent)"),
    ("canary error", lambda s: dataclasses.replace(s, canary=Fact(error="connect refused")),
     "storage.canary", "canary: connect refused"),
    ("corrupt on the peer", lambda s: dataclasses.replace(s, compared=Fact(sites_compared(
        "node1", index([obj("a", 100), obj("b", 100)]), "node2",
        index([obj("a", 100, etag=OTHER)]), now=NOW, max_delay_s=30.0))),
     "storage.consistency", "node2 lacks or differs on 2 object(s) of node1 older than 30s: "
                            "media-public/a (md5), media-public/b (missing)"),
]


@pytest.mark.parametrize(("name", "change", "check", "reason"), BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_each_fault_fails_its_check(name: str, change: Any, check: str, reason: str) -> None:
    got = checks(change(good()))
    assert got[check] == (False, reason)
    assert [n for n, (ok, _) in got.items() if not ok] == [check]


def test_no_writer_fails_canary_and_consistency() -> None:
    snap = dataclasses.replace(good(), writer=Fact(error="no node answers GET /primary"),
                               compared=Fact(error="no writer: no node answers GET /primary"),
                               canary=Fact(error="no writer: no node answers GET /primary"))
    got = checks(snap)
    assert not got["storage.canary"][0] and not got["storage.consistency"][0]
    assert not got["storage.routes.node1"][0]


def test_canary_not_run_passes_and_unobserved_storage_is_silent() -> None:
    assert checks(dataclasses.replace(good(), canary=Fact()))["storage.canary"][0]
    assert checks(Fact()) == {}
    assert checks(Fact(error="boom")) == {"storage.canary": (False, "storage: boom")}


def test_run_checks_includes_storage() -> None:
    s = dataclasses.replace(healthy(), storage=Fact(_node(0, writes_to=Fact(("node2",)))(
        good())))
    failing = [c.name for c in run_checks(s) if not c.ok]
    assert failing == ["storage.routes.node1"]


# --- status lines from the JSON document ------------------------------------------------------


def test_status_lines() -> None:
    s = dataclasses.replace(healthy(), storage=Fact(good()))
    doc = plain(s)
    assert status_lines(doc) == [
        "storage (s3): writes go to node1's site; promised delay 30s, pulls every 5s",
        "storage backlog: 0 object(s), 0 bytes of node1 not on node2; node1 1 objects, node2 1 "
        "(0 only there)",
        "storage delay: canary node1->node2 2.50s",
        "storage on node1: pulls from node2, last good pass 3s ago; uploads go to node1",
        "storage on node2: pulls from node1, last good pass 3s ago; uploads go to node1",
    ]
    assert status_lines({"storage": {"error": "x"}}) == ["storage: not observed (x)"]
    assert status_lines({}) == []


# --- gather_storage over fakes ------------------------------------------------------------------


def http_for(codes: dict[str, int | Exception]) -> Any:
    def get(url: str, _timeout: float) -> tuple[int, str]:
        answer = codes[url.split("//")[1].split(":")[0]]
        if isinstance(answer, Exception):
            raise answer
        return answer, ""
    return get


@pytest.mark.parametrize(
    ("codes", "writer", "error"),
    [
        ({"10.99.0.11": 200, "10.99.0.12": 503}, "node1", ""),
        ({"10.99.0.11": OSError("down"), "10.99.0.12": 200}, "node2", ""),
        ({"10.99.0.11": 503, "10.99.0.12": 503}, None, "no node answers GET /primary"),
        ({"10.99.0.11": 200, "10.99.0.12": 200}, None, "node1 and node2 both answer"),
    ],
)
def test_find_writer(codes: dict[str, Any], writer: str | None, error: str) -> None:
    if writer:
        assert find_writer(http_for(codes), TARGETS, 1.0) == writer
    else:
        with pytest.raises(Exception, match=error):
            find_writer(http_for(codes), TARGETS, 1.0)


def test_gather_storage_compares_from_the_writer_and_runs_the_canary() -> None:
    listings = {"node2": index([obj("a", 100)]), "node1": index([])}
    canaries: list[tuple[str, str]] = []

    def canary(w: Site, r: Site) -> ReadBack:
        canaries.append((w.name, r.name))
        return ReadBack("k", w.name, r.name, True, 1.5, 3, "match", 1.5)

    snap = gather_storage(TARGETS, http_for({"10.99.0.11": 503, "10.99.0.12": 200}), {},
                          now=NOW, timeout=1.0, lister=lambda site: listings[site.name],
                          run_canary=canary)
    assert snap.writer.value == "node2" and canaries == [("node2", "node1")]
    assert snap.compared.value is not None
    assert [(p.key, p.problem) for p in snap.compared.value.settled] == [("a", "missing")]
    assert snap.canary.value == CanarySeen("node2", "node1", True, 1.5, "match", 1.5)
    off = gather_storage(TARGETS, http_for({"10.99.0.11": 200, "10.99.0.12": 503}), {},
                         now=NOW, timeout=1.0, canary=False, lister=lambda site: {},
                         run_canary=canary)
    assert off.canary == Fact() and canaries == [("node2", "node1")]
