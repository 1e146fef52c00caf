"""One lab and one upgrade for the pair's lab tests: upgrade, storage, operations, manual
failover, rollback — in that order, because each builds on the pair the previous one leaves:
test_1 upgrades the single server, the next three run on that pair (each first puts the roles
back where the upgrade left them and checks the pair is healthy), and test_5 rolls it back,
which ends the pair.

`__init__.py` makes this directory a package: pytest gives `scope="package"` fixtures their
own lifetime only for a package (elsewhere they live as long as the session, and this lab
would still be up when tests/lab/test_lab.py brings up its own). tests/lab stays on sys.path
(the first directory up without `__init__.py`, prepend import mode), so `lab_helpers` imports
as it does next door.

A module run alone (`pytest tests/lab/pair/test_3_operations.py`) gets its own lab, upgraded
by the `upgraded` fixture.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import SLOW, Lab, fresh_lab, hapair

HOME = "node1"  # where the upgrade leaves the PostgreSQL primary and the Redis master
HEALTHY_WITHIN = 240.0  # after a rejoin: sync standby, Sentinels, storage loops settle


@pytest.fixture(scope="package")
def lab_pair(request: pytest.FixtureRequest) -> Iterator[tuple[Lab, Path]]:
    """A fresh lab (`lab up`), once for the package: (lab, inventory). Host logs are kept
    when a test failed meanwhile; `lab down` when the package ends, whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with fresh_lab(request.session, "pair") as lab:
        yield lab, Path(lab.status()["inventory"])


@pytest.fixture(scope="package")
def upgraded(lab_pair: tuple[Lab, Path]) -> tuple[Lab, Path]:
    """The lab upgraded to the pair. `hapair upgrade` reads the run journal next to the
    inventory: after test_1's upgrade it answers `already_upgraded` and changes nothing; in a
    module run alone it upgrades here (or resumes an unfinished run)."""
    _lab, inventory = lab_pair
    res = hapair("upgrade", "-i", str(inventory), "-y", "-o", "json", timeout=SLOW)
    assert res.returncode == 0, res.stderr[-3000:]
    return lab_pair


def check(inventory: Path) -> tuple[int, list[str]]:
    """`hapair check`: (exit code, failing check names)."""
    res = hapair("check", "-i", str(inventory), "-o", "json", timeout=300)
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    return res.returncode, doc.get("failing", [res.stderr[-500:]])


def wait_healthy(inventory: Path, why: str) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN
    code, failing = check(inventory)
    while code != 0 and time.monotonic() < deadline:
        time.sleep(5)
        code, failing = check(inventory)
    assert code == 0, (f"{why}: `hapair check` exit {code} after {HEALTHY_WITHIN:g} s, "
                       f"failing: {failing}")


def roles(inventory: Path) -> tuple[str | None, list[str]]:
    """(PostgreSQL primary, Redis masters) as `hapair status` sees them."""
    res = hapair("status", "-i", str(inventory), "-o", "json", timeout=300)
    doc = json.loads(res.stdout)
    return doc["primary"], doc["redis_masters"]


@pytest.fixture(scope="module")
def healthy_pair(upgraded: tuple[Lab, Path]) -> tuple[Lab, Path]:
    """The pair as the upgrade leaves it, checked at the start of each module after test_1:
    healthy (`hapair check` exit 0), then the PostgreSQL primary and the Redis master moved
    back to node1 by lossless switchovers if an earlier module left them on node2, healthy
    again. A module that leaves a host down or a service stopped fails this check instead,
    so the failure shows on the module that starts from it, not deep in its tests."""
    _lab, inventory = upgraded
    wait_healthy(inventory, "the pair the previous module left is not healthy")
    primary, masters = roles(inventory)
    moves = []
    if primary != HOME:
        moves.append(hapair("switchover", "-i", str(inventory), "--to", HOME))
    if masters != [HOME]:
        moves.append(hapair("switchover", "-i", str(inventory), "--to", HOME, "--redis-only"))
    for res in moves:
        assert res.returncode == 0, res.stderr[-3000:]
    if moves:
        wait_healthy(inventory, f"after moving the roles back to {HOME}")
    assert roles(inventory) == (HOME, [HOME])
    return upgraded
