"""Object storage on the lab's upgraded pair (issue 5), in file order on one module lab:

1. a new upload through the front door is readable on node2's site within the promised delay;
   `hapair check` passes every storage check and `status` shows the backlog and the delay;
2. an object corrupted and one deleted in node2's site data directory: `hapair check` exits
   4 naming `storage.consistency` and both objects; a full pass from the writer repairs them;
3. node1 partitioned: every object reads through node2;
4. node1 crashed: once Patroni promotes node2, an upload through the front door lands on
   node2's site (nobody touched storage) and reads back through the front door;
5. node1 booted and rejoined: node1's site gets that upload (replication reversed by itself).

Every wait is bounded. The pair test_1 upgraded (conftest.py); node2 ends primary, node1 its
rejoined standby (the next module's fixture moves the roles back).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from lab_helpers import Lab, hapair

from hapair.inventory.load import load_inventory
from hapair.workflows.storage import S3Api, StorageSetup, setup_from_inventory

pytestmark = pytest.mark.lab

T = TypeVar("T")
DOOR = "http://10.99.0.10"
BUCKET = "media-public"



def wait_for(fn: Callable[[], T], what: str, timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = fn()
        except Exception as exc:  # noqa: BLE001 - not yet
            got = None
            last = repr(exc)
        else:
            last = repr(got)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {last[:300]})")
        time.sleep(every)


class Pair:
    def __init__(self, lab: Lab, inventory: Path) -> None:
        self.lab = lab
        self.inventory = inventory
        inv = load_inventory(str(inventory))
        self.setup: StorageSetup
        self.setup, sites = setup_from_inventory(inv)
        self.sites = {s.name: s for s in sites}
        self.data_dir = inv.services.storage.data_dir
        self.delay = float(inv.services.storage.max_delay_s)

    def s3(self, node: str) -> S3Api:
        return S3Api(self.sites[node], self.setup)

    def on_site(self, node: str, key: str) -> bytes | None:
        return self.s3(node).get(BUCKET, key)

    def check(self) -> tuple[int, dict[str, Any]]:
        res = hapair("check", "-i", str(self.inventory), "-o", "json", timeout=300)
        return res.returncode, json.loads(res.stdout)


def upload(base: str, body: bytes, name: str = "photo.jpg") -> dict[str, Any]:
    r = httpx.post(f"{base}/api/media/", files={"file": (name, body, "image/jpeg")},
                   timeout=15, trust_env=False)
    assert r.status_code == 201, (r.status_code, r.text[:300])
    doc: dict[str, Any] = r.json()
    assert doc["sha256"] == hashlib.sha256(body).hexdigest()
    return doc


def fetch(base: str, key: str) -> bytes | None:
    r = httpx.get(f"{base}/media/{key}", timeout=15, trust_env=False)
    return r.content if r.status_code == 200 else None


def primary_is(pair: Pair, node: str) -> bool:
    url = f"http://{pair.sites[node].address}:8008/primary"
    return httpx.get(url, timeout=3, trust_env=False).status_code == 200


@pytest.fixture(scope="module")
def pair(healthy_pair: tuple[Lab, Path]) -> Pair:
    return Pair(*healthy_pair)


UPLOADED: dict[str, bytes] = {}  # key -> body, shared by the tests in file order
UPLOADED_AT: list[float] = []


def storage_checks(pair: Pair) -> dict[str, dict[str, Any]]:
    _code, doc = pair.check()
    return {c["name"]: c for c in doc["checks"] if c["name"].startswith("storage.")}


def storage_healthy(pair: Pair) -> dict[str, dict[str, Any]] | None:
    found = storage_checks(pair)
    return found if found and all(c["ok"] for c in found.values()) else None


CTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


def test_upload_reaches_the_peer_within_the_delay(pair: Pair) -> None:
    for i in range(3):
        body = os.urandom(20_000 + i)
        doc = upload(DOOR, body)
        UPLOADED[doc["key"]] = body
    UPLOADED_AT.append(time.time())
    assert all(pair.on_site("node1", k) == b for k, b in UPLOADED.items())  # node1 writes
    for key, body in UPLOADED.items():  # each bounded by the promised delay
        wait_for(lambda k=key, b=body: pair.on_site("node2", k) == b, f"{key} on node2",
                 pair.delay)
    storage = storage_checks(pair)
    assert all(c["ok"] for c in storage.values()), storage
    assert {"storage.canary", "storage.consistency", "storage.routes.node1",
            "storage.routes.node2", "storage.replication.node1",
            "storage.replication.node2"} <= set(storage)
    status = json.loads(hapair("status", "-i", str(pair.inventory), "-o", "json").stdout)
    sto = status["storage"]
    assert sto["writer"] == "node1"
    assert sto["compared"]["other"] == "node2" and "backlog_objects" in sto["compared"]
    assert sto["canary"]["ok"] and sto["canary"]["delay_s"] <= pair.delay


def test_corrupt_or_missing_object_on_node2_fails_the_check(pair: Pair) -> None:
    corrupt, missing = sorted(UPLOADED)[:2]
    # the check judges objects older than the promised delay (younger may be in flight)
    time.sleep(max(0.0, UPLOADED_AT[-1] + pair.delay + 2 - time.time()))
    d = f"{pair.data_dir}/{BUCKET}"
    # node2's pull loop stopped first: its passes repair such damage within seconds, which
    # would race the check. Then, behind the site's back, as a failing disk would: one byte
    # changed, one file gone; the site restarts (it caches listings) as after a reboot.
    pair.lab.sh("node2", f"{CTL} stop hapair-s3-replicate >/dev/null && "
                         f"printf corrupt! | dd of={d}/{corrupt} bs=1 seek=100 conv=notrunc "
                         f"2>/dev/null && rm -f {d}/{missing} && {CTL} restart s3 >/dev/null")
    wait_for(lambda: pair.on_site("node2", corrupt) is not None, "node2's site back", 30)
    code, doc = pair.check()
    assert code == 4, doc["failing"]
    assert "storage.consistency" in doc["failing"]
    reason = next(c["reason"] for c in doc["checks"] if c["name"] == "storage.consistency")
    assert f"{BUCKET}/{corrupt} (md5)" in reason and f"{BUCKET}/{missing} (missing)" in reason
    # a full pass from the writer (the loop's first after a start) repairs both
    pair.lab.sh("node2", f"{CTL} start hapair-s3-replicate >/dev/null")
    for key in (corrupt, missing):
        wait_for(lambda k=key: pair.on_site("node2", k) == UPLOADED[k], f"{key} repaired", 60)


def test_every_object_reads_through_node2_while_node1_is_partitioned(pair: Pair) -> None:
    keys = [o.key for o in pair.s3("node2").list(BUCKET) if len(o.key.split(".")[0]) == 32]
    assert set(UPLOADED) <= set(keys)
    status = json.loads(hapair("status", "-i", str(pair.inventory), "-o", "json").stdout)
    lb = next(h["url"] for n in status["nodes"] if n["name"] == "node2" for h in n["http"]
              if h["name"] == "lb")
    node2 = lb.split("/health")[0]
    pair.lab.cli("partition", "node1")
    try:
        unread = [k for k in keys if fetch(node2, k) is None]
        assert unread == []
        assert all(fetch(node2, k) == b for k, b in UPLOADED.items())
    finally:
        pair.lab.cli("heal", "node1")


AFTER: dict[str, bytes] = {}


def test_after_a_crash_uploads_go_to_node2(pair: Pair) -> None:
    pair.lab.cli("crash", "node1")
    wait_for(lambda: primary_is(pair, "node2"), "node2 promoted by Patroni", 120, 1.0)
    body = os.urandom(30_000)
    doc = wait_for(lambda: _try_upload(body), "an upload through the front door", 90, 1.0)
    AFTER[doc["key"]] = body
    assert pair.on_site("node2", doc["key"]) == body  # the new writer's site took it
    assert fetch(DOOR, doc["key"]) == body


def _try_upload(body: bytes) -> dict[str, Any] | None:
    try:
        r = httpx.post(f"{DOOR}/api/media/", files={"file": ("after.jpg", body, "image/jpeg")},
                       timeout=10, trust_env=False)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 201 else None


def test_node1_gets_the_upload_after_boot_and_rejoin(pair: Pair) -> None:
    pair.lab.cli("boot", "node1", timeout=300)
    res = hapair("rejoin", "-i", str(pair.inventory), "node1", "-o", "json", timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    assert primary_is(pair, "node2")
    for key, body in AFTER.items():
        wait_for(lambda k=key, b=body: pair.on_site("node1", k) == b, f"{key} on node1", 90)
    # node2's loop retried node1 all along; its next pass after the boot succeeds
    storage = wait_for(lambda: storage_healthy(pair), "every storage check to pass", 180, 5.0)
    assert "to node2's site" in storage["storage.routes.node1"]["reason"]
    assert "canary written on node2" in storage["storage.canary"]["reason"]
