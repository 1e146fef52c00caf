"""The upgrade's final checks (verify.replication, verify.sentinel) and its report facts, now
built on observe's probes: the one-query PostgreSQL status, one Sentinel's view, HTTP health."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hapair.exec.recording import RecordingTransport
from hapair.inventory import load_inventory
from hapair.observe import ReadOnlySecrets
from hapair.observe.probes import PG_STATUS_SQL
from hapair.plan.step import StepContext, StepKind
from hapair.workflows.upgrade import verify
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.stepkit import psql_argv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "observe" / "data"
ADDR = {"node1": "10.99.0.11", "node2": "10.99.0.12", "witness": "10.99.0.13"}


@pytest.fixture
def params(tmp_path: Path) -> UpgradeParams:
    inv = load_inventory(write_inventory(tmp_path))
    gen = tmp_path / "secrets" / "generated"
    gen.mkdir(mode=0o700)
    (gen / "sentinel_password").write_text("sentinel-secret\n")
    return UpgradeParams(inv, ReadOnlySecrets(gen))


def pg_status(**rows: tuple[str, str]) -> str:
    """PG_STATUS_SQL's JSON line for a primary with these standbys (name=(state, sync))."""
    d = json.loads((DATA / "pg_status_primary.txt").read_text())
    d["replication"] = [{"application_name": name, "client_addr": None, "state": st,
                         "sync_state": sync, "lag_bytes": 128, "replay_lag_s": None}
                        for name, (st, sync) in rows.items()]
    return json.dumps(d)


def ctx_with(stdout: str, returncode: int = 0) -> tuple[StepContext, RecordingTransport]:
    t = RecordingTransport("node1").on(psql_argv("cms"), stdout=stdout, returncode=returncode,
                                       stderr="psql: connection refused" if returncode else "")
    return StepContext("node1", {"node1": t}), t


def steps(p: UpgradeParams) -> dict[str, Any]:
    return {s.id.rsplit("/", 1)[1]: s for s in verify.final_steps(p)}


def test_final_steps_keep_their_ids_and_kind(params: UpgradeParams) -> None:
    found = verify.final_steps(params)
    assert [s.id for s in found] == ["upgrade/node1/verify.replication",
                                     "upgrade/node1/verify.sentinel"]
    assert {s.kind for s in found} == {StepKind.PROBE} and {s.host for s in found} == {"node1"}
    assert "sync" in found[0].reason  # the lab inventory's durability is sync


@pytest.mark.parametrize(
    ("rows", "durability", "ok", "reason"),
    [
        ({"node2": ("streaming", "sync")}, "sync", True,
         "pg_stat_replication on node1: node2 streaming sync"),
        ({"node2": ("streaming", "async")}, "sync", False,
         "pg_stat_replication on node1: node2 streaming async"),
        ({"node2": ("streaming", "async")}, "async", True,
         "pg_stat_replication on node1: node2 streaming async"),
        ({"node2": ("catchup", "sync")}, "sync", False,
         "pg_stat_replication on node1: node2 catchup sync"),
        ({"old": ("streaming", "sync")}, "sync", False,
         "pg_stat_replication on node1 has no node2"),
        ({}, "strict", False, "pg_stat_replication on node1 has no node2"),
    ],
)
def test_replication_check(params: UpgradeParams, rows: dict[str, tuple[str, str]],
                           durability: str, ok: bool, reason: str) -> None:
    p = UpgradeParams(params.inv.model_copy(update={"durability": durability}), params.gen)
    ctx, t = ctx_with(pg_status(**rows))
    result = steps(p)["verify.replication"].verify.check(ctx)
    assert (result.ok, result.reason) == (ok, reason)
    call = t.calls[-1]
    assert call.user == "postgres" and call.input == PG_STATUS_SQL.encode()


@pytest.mark.parametrize(
    ("stdout", "returncode", "reason"),
    [
        ("", 2, "standby streaming: "),
        ("not json", 0, "standby streaming: PostgreSQL status: not JSON"),
    ],
)
def test_replication_check_failures_are_reasons(params: UpgradeParams, stdout: str,
                                                returncode: int, reason: str) -> None:
    ctx, _ = ctx_with(stdout, returncode)
    result = steps(params)["verify.replication"].verify.check(ctx)
    assert not result.ok and result.reason.startswith(reason)


def test_report_rows(params: UpgradeParams) -> None:
    ctx, _ = ctx_with(pg_status(node2=("streaming", "sync")))
    assert verify.replication_rows(ctx.on("node1"), "cms") == [
        {"standby": "node2", "state": "streaming", "sync_state": "sync",
         "replay_lag_bytes": 128}]


# --- Sentinels ---------------------------------------------------------------------------------

OK = "OK 3 usable Sentinels. Quorum and failover authorization can be reached"
NOQUORUM = "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the majority"


def peer(n: int) -> list[str]:
    return ["name", f"id{n}", "ip", f"10.99.0.{n}", "port", "26379", "flags", "sentinel"]


class FakeSentinel:
    def __init__(self, master: str | None, quorum: str, peers: int) -> None:
        self.master, self.quorum, self.peers = master, quorum, peers
        self.commands: list[tuple[str, ...]] = []

    def execute_command(self, *words: str) -> Any:
        self.commands.append(words)
        sub = words[1].upper()
        if sub == "GET-MASTER-ADDR-BY-NAME":
            return None if self.master is None else [ADDR[self.master], "6379"]
        if sub == "CKQUORUM":
            if self.quorum.startswith("NOQUORUM"):
                raise redis.ResponseError(self.quorum)
            return self.quorum
        if sub == "SENTINELS":
            return [peer(n) for n in range(self.peers)]
        raise AssertionError(words)


def fake_clients(by_address: dict[str, FakeSentinel | Exception]
                 ) -> Callable[..., Any]:
    @contextmanager
    def client(address: str, port: int, password: Any) -> Iterator[FakeSentinel]:
        assert port == 26379 and password.reveal() == "sentinel-secret"
        found = by_address[address]
        if isinstance(found, Exception):
            raise found
        yield found

    return client


def healthy() -> dict[str, FakeSentinel | Exception]:
    return {a: FakeSentinel("node1", OK, 2) for a in ADDR.values()}


@pytest.mark.parametrize(
    ("change", "ok", "reason"),
    [
        ({}, True, "3/3 Sentinels name node1 master with CKQUORUM OK and 2 peers"),
        ({"witness": FakeSentinel("node1", NOQUORUM, 2)}, False,
         "2/3 Sentinels name node1 master with CKQUORUM OK and 2 peers (not: witness)"),
        ({"node2": FakeSentinel("node2", OK, 2)}, False,
         "2/3 Sentinels name node1 master with CKQUORUM OK and 2 peers (not: node2)"),
        ({"node2": FakeSentinel(None, OK, 2)}, False,
         "2/3 Sentinels name node1 master with CKQUORUM OK and 2 peers (not: node2)"),
        ({"node1": FakeSentinel("node1", OK, 1)}, False,
         "2/3 Sentinels name node1 master with CKQUORUM OK and 2 peers (not: node1)"),
        ({"witness": redis.ConnectionError("refused")}, False,
         "2/3 Sentinels name node1 master with CKQUORUM OK and 2 peers (not: witness)"),
    ],
)
def test_sentinel_check(params: UpgradeParams, monkeypatch: pytest.MonkeyPatch,
                        change: dict[str, FakeSentinel | Exception], ok: bool,
                        reason: str) -> None:
    by_address = healthy()
    by_address.update({ADDR[k]: v for k, v in change.items()})
    monkeypatch.setattr(verify, "client", fake_clients(by_address))
    result = steps(params)["verify.sentinel"].verify.check(StepContext("node1", {}))
    assert (result.ok, result.reason) == (ok, reason)


def test_sentinel_report_rows(params: UpgradeParams, monkeypatch: pytest.MonkeyPatch) -> None:
    by_address = healthy()
    by_address[ADDR["witness"]] = redis.ConnectionError("connection refused")
    monkeypatch.setattr(verify, "client", fake_clients(by_address))
    rows = verify.sentinel_view(params)
    assert rows[0] == {"sentinel": "node1", "master": "10.99.0.11:6379", "master_node": "node1",
                       "ckquorum": OK, "other_sentinels": 2}
    assert rows[2] == {"sentinel": "witness", "error": "connection refused"}


# --- HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (200, 200),
        (503, 503),
        (httpx.ConnectError("refused"), "error: connection failed: refused"),
        (httpx.ReadTimeout("slow"), "error: timed out after 5s"),
    ],
)
def test_http_status(monkeypatch: pytest.MonkeyPatch, answer: int | Exception,
                     expected: int | str) -> None:
    def get(url: str, timeout: float) -> tuple[int, str]:
        assert url == "http://10.99.0.10:80/health/" and timeout == 5.0
        if isinstance(answer, Exception):
            raise answer
        return answer, ""

    monkeypatch.setattr(verify, "_get", get)
    assert verify.http_status("http://10.99.0.10:80/health/") == expected

