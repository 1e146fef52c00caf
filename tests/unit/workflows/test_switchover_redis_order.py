"""The Redis switchover's safety order, over fake Redis/Sentinel clients: writes are paused
first; the old master is demoted (REPLICAOF) and every router switched BEFORE the pause
ends; the pause always ends, even when Sentinel refuses the failover."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis

from hapair.workflows.ops import switchover
from hapair.workflows.ops.timeline import Timeline

OLD, NEW, SENTINEL = "10.99.0.11", "10.99.0.12", "10.99.0.13"


class FakeRedis:
    def __init__(self, name: str, log: list[str], info: dict[str, Any],
                 fail: dict[str, Exception] | None = None) -> None:
        self.name, self.log, self._info, self.fail = name, log, info, fail or {}

    def __enter__(self) -> FakeRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute_command(self, *words: str) -> str:
        line = " ".join(words)
        self.log.append(f"{self.name}: {line}")
        for prefix, exc in self.fail.items():
            if line.startswith(prefix):
                raise exc
        if line.startswith("SENTINEL FAILOVER"):
            self.promote()
        return "OK"

    def info(self, section: str) -> dict[str, Any]:
        return self._info

    promote: Any = staticmethod(lambda: None)


def params() -> Any:
    hosts = {"node1": SimpleNamespace(address=OLD), "node2": SimpleNamespace(address=NEW)}
    return SimpleNamespace(
        inv=SimpleNamespace(services=SimpleNamespace(redis=SimpleNamespace(
            port=6379, password="pw"))),
        host=hosts.__getitem__, sentinel_hosts=[SimpleNamespace(address=SENTINEL)],
        sentinel_password="spw", sentinel_master_name="cms-cache")


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], dict[str, FakeRedis]]:
    log: list[str] = []
    replica_info = {"role": "slave", "slave_repl_offset": 500}
    fakes = {
        OLD: FakeRedis("old", log, {"role": "master", "master_repl_offset": 500}),
        NEW: FakeRedis("new", log, replica_info),
        SENTINEL: FakeRedis("sentinel", log, {}),
    }
    fakes[SENTINEL].promote = lambda: replica_info.update(role="master")  # type: ignore[method-assign]
    monkeypatch.setattr(switchover, "client", lambda address, port, password: fakes[address])
    monkeypatch.setattr(switchover, "_routers_sentinels_name",
                        lambda p, want: (log.append(f"sentinels name {want}") or True, ""))
    monkeypatch.setattr(switchover, "switch_routers", lambda ctx, p, nodes, frm, to, tl: (
        log.append(f"routers {frm[1]} -> {to[1]} on {','.join(nodes)}"), [])[1])
    return log, fakes


def test_demoted_and_rerouted_before_writes_resume(world: tuple[list[str], Any]) -> None:
    log, _ = world
    tl = Timeline()
    switchover._redis_paused_switch(None, params(), "node1", "node2",  # type: ignore[arg-type]
                                    ["node1", "node2"], tl)
    assert log == [
        f"old: CLIENT PAUSE {switchover.REDIS_PAUSE_MS} WRITE",
        "sentinel: SENTINEL FAILOVER cms-cache",
        f"old: REPLICAOF {NEW} 6379",
        "old: CONFIG REWRITE",
        "sentinels name node2",
        "routers node1 -> node2 on node1,node2",
        "old: CLIENT UNPAUSE",
    ]
    assert list(tl.as_dict()["events_s"]) == [
        "pause_done", "offset_matched", "sentinel_failover_sent", "new_master",
        "old_master_demoted", "sentinels_name_new", "resume_done"]


def test_a_refused_failover_still_ends_the_pause_and_demotes_nobody(
        world: tuple[list[str], Any]) -> None:
    log, fakes = world
    fakes[SENTINEL].fail = {"SENTINEL FAILOVER": redis.ResponseError("NOGOODSLAVE")}
    with pytest.raises(redis.ResponseError):
        switchover._redis_paused_switch(None, params(), "node1", "node2",  # type: ignore[arg-type]
                                        ["node1", "node2"], Timeline())
    assert log[-1] == "old: CLIENT UNPAUSE"
    assert not [x for x in log if "REPLICAOF" in x or x.startswith("routers")]
