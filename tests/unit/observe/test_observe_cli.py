"""The real `status`, `check` and `monitor --once` click commands over an injected snapshot
source: exit codes, exactly one JSON document on stdout, failing checks named, no secret
printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click
import pytest
from observe_fakes import healthy, with_node

from hapair.cli.observe import Source, check_cmd, monitor_cmd, status_cmd
from hapair.errors import HapairError
from hapair.inventory import Inventory
from hapair.observe import PairSnapshot
from hapair.observe.snapshot import Fact, HttpResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

SECRET = "hunter2-secret-value"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    return write_inventory(tmp_path)


def obj(*snapshots: PairSnapshot) -> dict[str, object]:
    queue = list(snapshots)

    @contextmanager
    def factory(_inv: Inventory) -> Iterator[Source]:
        yield Source(lambda: queue.pop(0) if len(queue) > 1 else queue[0],
                     lambda text: text.replace(SECRET, "***"))

    return {"observe_source": factory}


def run(args: list[str], o: dict[str, object]) -> int:
    """As hapair.cli.main does: errors become exit codes (the lead registers the verbs)."""
    root = click.Group("hapair")
    for cmd in (status_cmd, check_cmd, monitor_cmd):
        root.add_command(cmd)
    try:
        rc = root.main(args=args, prog_name="hapair", standalone_mode=False, obj=o)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except HapairError as exc:
        print(f"hapair: {exc}", file=sys.stderr)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


def leaky() -> PairSnapshot:
    """node2's PostgreSQL error message echoes a secret (as a misconfigured tool might)."""
    return with_node(healthy(), "node2", postgres=Fact(error=f"psql: password {SECRET} "
                                                             "rejected"))


def test_status_json_is_one_document(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status", "-i", str(inv), "-o", "json"], obj(healthy())) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["cluster"] == "cms" and doc["primary"] == "node1" and doc["warnings"] == []
    assert [n["role"] for n in doc["nodes"]] == ["primary", "replica"]
    assert doc["replication"][0]["lag_bytes"] == 0


def test_status_exits_0_with_warnings_and_redacts(inv: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status", "-i", str(inv), "-o", "json"], obj(leaky())) == 0
    cap = capsys.readouterr()
    assert SECRET not in cap.out and SECRET not in cap.err
    doc = json.loads(cap.out)
    assert doc["nodes"][1]["postgres"] == {"error": "psql: password *** rejected"}
    assert run(["status", "-i", str(inv)], obj(leaky())) == 0
    cap = capsys.readouterr()
    assert "node2" in cap.out and SECRET not in cap.out + cap.err


def test_check_all_green_exits_0(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "-i", str(inv), "-o", "json"], obj(healthy())) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["failing"] == []
    assert {c["name"] for c in doc["checks"]} >= {"postgres.primary", "front_door"}


def test_check_failing_exits_4_naming_every_failing_check(
        inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = replace(leaky(), front_door=HttpResult("front_door", "http://10.99.0.10:80/health/",
                                               None, "timed out after 3s"))
    assert run(["check", "-i", str(inv), "-o", "json"], obj(s)) == 4
    cap = capsys.readouterr()
    doc = json.loads(cap.out)  # still exactly one document on stdout
    assert doc["ok"] is False
    assert set(doc["failing"]) == {"front_door", "postgres.node2"}
    assert cap.err.strip().splitlines()[-1] == (
        f"hapair: 2 of {len(doc['checks'])} checks failing: postgres.node2, front_door")
    assert SECRET not in cap.out + cap.err
    assert run(["check", "-i", str(inv)], obj(s)) == 4
    table = capsys.readouterr().out
    assert "FAIL" in table and "front_door" in table


def test_monitor_once_prints_metrics_and_keeps_state(inv: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state" / "monitor.json"
    args = ["monitor", "-i", str(inv), "--once", "--state", str(state),
            "--backup-max-age-hours", "0"]
    assert run(args, obj(healthy())) == 0
    out = capsys.readouterr().out
    assert 'hapair_pg_replication_lag_bytes{standby="node2"} 0.0' in out
    assert 'hapair_failovers_seen_total{service="postgres"} 0.0' in out
    assert (state.stat().st_mode & 0o777) == 0o600
    assert json.loads(state.read_text())["leaders"] == {"postgres": "node1", "redis": "node1"}
    # the next run sees node2 lead: a failover, counted across runs through the state file
    moved = replace(healthy(), leader_key=Fact(None, "x"), patroni=Fact(error="down"))
    moved = with_node(with_node(moved, "node1", postgres=Fact(error="down")), "node2",
                      postgres=Fact(healthy().node("node1").postgres.value))
    assert run(args, obj(moved)) == 0
    out = capsys.readouterr().out
    assert 'hapair_failovers_seen_total{service="postgres"} 1.0' in out
    firing = json.loads(state.read_text())["alerts"]
    assert "postgres.standby.node1" in firing and "patroni.leader" in firing


def test_monitor_once_exits_1_when_a_webhook_is_unreachable(
        inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:18999/hook/TOKEN-abc"  # nothing listens on 18999
    s = replace(healthy(), front_door=HttpResult("front_door", "http://x/", 503))
    rc = run(["monitor", "-i", str(inv), "--once", "--webhook", url], obj(s))
    cap = capsys.readouterr()
    assert rc == 1
    assert "webhook delivery(ies) failed" in cap.err and "TOKEN-abc" not in cap.err
    assert "hapair_front_door_up 0.0" in cap.out


@pytest.mark.parametrize(("args", "message"), [
    (["--listen", "localhost:9187"], "expected ADDRESS:PORT"),
    (["--webhook", "ftp://x/y"], "expected an http:// or https:// URL"),
    (["--interval", "0"], "0.0 is not in the range"),
])
def test_monitor_usage_errors_exit_2(inv: Path, args: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["monitor", "-i", str(inv), "--once", *args], obj(healthy())) == 2
    assert message in capsys.readouterr().err


def test_webhooks_from_the_environment(inv: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAPAIR_WEBHOOK", "http://127.0.0.1:18999/a http://127.0.0.1:18999/b")
    s = replace(healthy(), front_door=HttpResult("front_door", "http://x/", 503))
    assert run(["monitor", "-i", str(inv), "--once", "--backup-max-age-hours", "0"],
               obj(s)) == 1
    assert "2 webhook delivery(ies) failed" in capsys.readouterr().err


def test_status_table_of_a_pair_with_a_dead_node(inv: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    why = Fact(error="node2 unreachable: unreachable over SSH: [timed out]")
    s = with_node(healthy(), "node2", postgres=why, disk=why, router=why, pgbouncer=why,
                  backups=why, vip=why, redis=Fact(error="timed out"))
    assert run(["status", "-i", str(inv)], obj(s)) == 0
    out = capsys.readouterr().out
    assert "down" in out and "backups on node2: not listed (node2 unreachable" in out
