import pytest

from hapair.components.storage.backlog import (
    AckedUpload,
    Found,
    ObjectInfo,
    compare,
    index,
    rpo_report,
    totals,
)

MD5_A = "0cc175b9c0f1b6a831c399e269772661"
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"
NOW = 1_000_000.0


def obj(key: str, size: int = 10, etag: str = MD5_A, age: float = 5.0,
        bucket: str = "media-public") -> ObjectInfo:
    return ObjectInfo(bucket, key, size, etag, NOW - age)


# (writer objects, other objects, expected [(key, problem)], compared, size_only)
CASES = [
    ("identical", [obj("a")], [obj("a")], [], 1, 0),
    ("missing", [obj("a"), obj("b")], [obj("a")], [("b", "missing")], 1, 0),
    ("size", [obj("a", size=10)], [obj("a", size=9)], [("a", "size")], 1, 0),
    ("md5", [obj("a")], [obj("a", etag=MD5_B)], [("a", "md5")], 1, 0),
    ("multipart size only", [obj("a", etag="abc-3")], [obj("a", etag=MD5_B)], [], 1, 1),
    ("multipart size differs", [obj("a", etag="abc-3")], [obj("a", size=1)], [("a", "size")],
     1, 0),
    ("only on other is not backlog", [obj("a")], [obj("a"), obj("z")], [], 1, 0),
    ("canary ignored", [obj("hapair-canary/x.bin")], [], [], 0, 0),
    ("same key other bucket", [obj("a")], [obj("a", bucket="media-private")],
     [("a", "missing")], 0, 0),
]


@pytest.mark.parametrize(("name", "writer", "other", "expected", "compared", "size_only"),
                         CASES, ids=[c[0] for c in CASES])
def test_compare(name: str, writer: list[ObjectInfo], other: list[ObjectInfo],
                 expected: list[tuple[str, str]], compared: int, size_only: int) -> None:
    b = compare("node1", index(writer), "node2", index(other), now=NOW,
                ignore_prefix="hapair-canary/")
    assert [(d.key, d.problem) for d in b.differences] == expected
    assert (b.compared, b.size_only) == (compared, size_only)
    assert b.check().ok == (not expected)


def test_backlog_summary() -> None:
    writer = [obj("old", size=100, age=300), obj("new", size=7, age=2), obj("same")]
    other = [obj("same"), obj("new", size=7, etag=MD5_B)]
    b = compare("node1", index(writer), "node2", index(other), now=NOW)
    assert [d.key for d in b.missing] == ["old"]
    assert [d.key for d in b.mismatched] == ["new"]
    assert b.bytes == 107
    assert b.oldest_age_s == pytest.approx(300)
    assert b.check().reason == (
        "node2 lacks 1 and differs on 1 of node1's objects (107 bytes, oldest 300s old); "
        "first: media-public/new (md5)")
    ok = compare("node1", index([obj("a")]), "node2", index([obj("a")]), now=NOW)
    assert ok.check().reason == "node2 holds all 1 objects of node1"
    assert ok.oldest_age_s is None


def test_totals() -> None:
    listing = index([obj("a", size=3), obj("b", size=4), obj("c", size=5, bucket="media-private"),
                     obj("d", size=9, bucket="unlisted")])
    t = totals("node1", ["media-public", "media-private", "empty-one"], listing)
    assert t.objects == {"media-public": 2, "media-private": 1, "empty-one": 0}
    assert t.bytes == {"media-public": 7, "media-private": 5, "empty-one": 0}
    assert (t.total_objects, t.total_bytes) == (3, 12)


SHA_1 = "a" * 64
SHA_2 = "b" * 64
UPLOADS = [AckedUpload("k1", SHA_1, 100.0), AckedUpload("k2", SHA_1, 104.0),
           AckedUpload("k3", SHA_2, 108.5), AckedUpload("k4", SHA_2, 112.0)]

# (found on the surviving site, lost_at, expected [(key, problem, age)], rpo)
RPO_CASES = [
    ("all there", {u.key: Found(u.key, u.sha256) for u in UPLOADS}, 110.0, [], 0.0),
    ("last two missing", {"k1": Found("k1", SHA_1), "k2": Found("k2", SHA_1.upper()),
                          "k3": Found("k3", None)}, 110.0,
     [("k3", "missing", 1.5), ("k4", "missing", -2.0)], 1.5),
    ("corrupt and missing", {"k1": Found("k1", SHA_2), "k3": Found("k3", SHA_2),
                             "k4": Found("k4", SHA_2)}, 110.0,
     [("k1", "corrupt", 10.0), ("k2", "missing", 6.0)], 10.0),
]


@pytest.mark.parametrize(("name", "found", "lost_at", "expected", "rpo"), RPO_CASES,
                         ids=[c[0] for c in RPO_CASES])
def test_rpo_report(name: str, found: dict[str, Found], lost_at: float,
                    expected: list[tuple[str, str, float]], rpo: float) -> None:
    r = rpo_report("node2", UPLOADS, found, lost_at)
    assert [(x.key, x.problem, pytest.approx(x.age_s)) for x in r.lost] == expected
    assert r.rpo_s == pytest.approx(rpo)
    assert r.acknowledged == 4
    assert r.check().ok == (not expected)


def test_rpo_reason_names_keys() -> None:
    r = rpo_report("node2", UPLOADS, {"k1": Found("k1", SHA_1)}, 110.0)
    assert r.check().reason == (
        "3 of 4 acknowledged uploads lost on node2, media RPO 6.0s: k2 (missing, 6.0s), "
        "k3 (missing, 1.5s), k4 (missing, -2.0s)")
