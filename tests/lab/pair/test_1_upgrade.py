"""The upgrade on the lab's real hosts (issue 3): `plan` changes nothing, bad input is refused
with nothing touched, a second run is refused while one holds the lock, an interrupted run
resumes, and the upgrade under a continuous drill load loses no request and no write. Before
any of it, `hapair rollback` is refused with nothing touched (there is no pair yet).

The package's fresh lab (conftest.py): the tests run in file order and build on each other,
and leave the upgraded pair to the next modules.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lab_helpers import CLI_TIMEOUT, Lab, programs

pytestmark = pytest.mark.lab

UPGRADE_TIMEOUT = 900.0
ALL_HOSTS = ("node1", "node2", "witness")
# What plan must never change: configuration trees, supervisor programs, data directories.
SNAPSHOT = (
    "for d in /etc/supervisor/conf.d /etc/hapair /etc/redis /etc/nginx /etc/haproxy "
    "/etc/pgbouncer /etc/keepalived; do [ -d $d ] && find $d -type f -exec md5sum {} +; done; "
    "ls -la /var/lib/postgresql /var/lib/postgresql/15 2>/dev/null; "
    "md5sum /var/lib/postgresql/15/main/postgresql.conf /var/lib/postgresql/15/main/pg_hba.conf "
    "2>/dev/null; true"
)


def hapair(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hapair.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def up_lab(lab_pair: tuple[Lab, Path]) -> Lab:
    return lab_pair[0]


@pytest.fixture(scope="module")
def inventory(lab_pair: tuple[Lab, Path]) -> Path:
    return lab_pair[1]


def snapshot(lab: Lab) -> dict[str, str]:
    return {h: lab.sh(h, SNAPSHOT).stdout for h in ALL_HOSTS}


def test_rollback_is_refused_before_any_upgrade_nothing_touched(up_lab: Lab,
                                                                inventory: Path) -> None:
    before = {h: programs(up_lab, h) for h in ALL_HOSTS}
    res = hapair("rollback", "-i", str(inventory), "-y", timeout=UPGRADE_TIMEOUT)
    assert res.returncode == 3, res.stderr[-2000:]
    assert "no completed `hapair upgrade`" in res.stderr
    assert {h: programs(up_lab, h) for h in before} == before  # nothing touched
    assert not (inventory.parent / "runs" / "rollback").exists()


def test_plan_lists_steps_and_changes_nothing(up_lab: Lab, inventory: Path) -> None:
    before = snapshot(up_lab)
    res = hapair("plan", "-i", str(inventory), "-o", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    kinds = {s["id"].split("/", 2)[2]: s["kind"] for s in doc["plan"]["steps"]}
    assert kinds["patroni.handover"] == "restart"
    assert kinds["postgres.hba-peer"] == "reload"
    assert kinds["postgres.replication-role"] == "sql"
    assert kinds["patroni.clone"] == "new-service"
    assert doc["automatic_failover"] is True and doc["refused"] is False
    assert any("replication is asynchronous" in n for n in doc["notes"])
    assert snapshot(up_lab) == before


def test_wrong_database_password_is_refused_untouched(up_lab: Lab, inventory: Path,
                                                     tmp_path: Path) -> None:
    copy = tmp_path / "inv"
    shutil.copytree(inventory.parent, copy, ignore=shutil.ignore_patterns("hosts", "venv"),
                    symlinks=True)
    secret = copy / "secrets" / "postgres_password"
    secret.write_text("not-the-password\n")
    secret.chmod(0o600)
    before = snapshot(up_lab)
    res = hapair("upgrade", "-i", str(copy / inventory.name), "-y")
    assert res.returncode == 3, res.stderr
    assert "services.postgres.password" in res.stderr
    assert snapshot(up_lab) == before


@pytest.mark.parametrize("host", ["node2", "witness"])
def test_unreachable_host_is_refused(up_lab: Lab, inventory: Path, host: str) -> None:
    up_lab.cli("partition", host)
    try:
        res = hapair("plan", "-i", str(inventory))
    finally:
        up_lab.cli("heal", host)
    assert res.returncode == 3, res.stderr
    assert f"{host}" in res.stderr and "unreachable" in res.stderr


def test_standby_with_a_data_directory_is_refused(up_lab: Lab, inventory: Path) -> None:
    up_lab.sh("node2", "install -d -o postgres /var/lib/postgresql/15/main && "
                       "echo 15 > /var/lib/postgresql/15/main/PG_VERSION")
    try:
        res = hapair("upgrade", "-i", str(inventory), "-y")
    finally:
        up_lab.sh("node2", "rm -rf /var/lib/postgresql/15")
    assert res.returncode == 3, res.stderr
    assert "node2 already holds a PostgreSQL data directory" in res.stderr
    assert "etcd.conf" not in up_lab.sh("node2", "ls /etc/supervisor/conf.d").stdout


def _secrets(inventory: Path) -> list[str]:
    found = [p.read_text().strip() for p in (inventory.parent / "secrets").rglob("*")
             if p.is_file()]
    return [s for s in found if len(s) >= 8]


class PsSampler:
    """Samples every host's process table while the upgrade runs (secrets must not show)."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.samples, self._stop = lab, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for h in ALL_HOSTS:
                self.samples.append(self.lab.sh(h, "ps -eo args", check=False).stdout)
            self._stop.wait(1.0)

    def __enter__(self) -> PsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_interrupted_upgrade_is_refused_twice_then_resumes(up_lab: Lab, inventory: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hapair.cli.main", "upgrade", "-i",
                             str(inventory), "-y"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # progress lines: "[n/N] upgrade/<host>/<step>: ok — …"
        seen.append(line)
        if "redis.ha-settings: ok" in line or time.monotonic() > deadline:
            break
    second = hapair("upgrade", "-i", str(inventory), "-y")
    proc.send_signal(signal.SIGKILL)  # the controller dies mid-run, as a power cut would
    proc.wait(timeout=30)
    assert any("redis.ha-settings: ok" in s for s in seen), "".join(seen)[-2000:]
    assert second.returncode == 3, second.stderr
    assert "held" in second.stderr.lower() and "pid" in second.stderr.lower()


def test_ssh_cut_mid_run_fails_the_step_and_leaves_it_resumable(up_lab: Lab,
                                                                 inventory: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hapair.cli.main", "upgrade", "-i",
                             str(inventory), "-y"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    cut = False
    try:
        for line in proc.stderr:
            lines.append(line)
            if not cut and "redis.ha-settings: skipped" in line:
                up_lab.cli("partition", "node2")  # node2's SSH goes silent mid-run
                cut = True
        proc.wait(timeout=300)
    finally:
        if cut:
            up_lab.cli("heal", "node2")
    text = "".join(lines)
    assert cut, text[-2000:]
    assert proc.returncode == 1, text[-2000:]
    assert "upgrade/node2/" in text and "failed" in text


def test_upgrade_under_load_resumes_with_no_failed_request(up_lab: Lab, inventory: Path) -> None:
    with PsSampler(up_lab) as ps:
        res = hapair("upgrade", "-i", str(inventory), "-y", "--drill-load", "-o", "json",
                     timeout=UPGRADE_TIMEOUT)
    assert res.returncode == 0, res.stderr[-4000:]
    doc = json.loads(res.stdout)
    skipped = [o for o in doc["run"]["steps"] if o["result"] == "skipped"]
    assert any(o["step"].endswith("redis.ha-settings") for o in skipped), "did not resume"
    impact = doc["client_impact"]
    assert impact["requests"]["failed"] == 0, impact
    assert impact["writes"]["lost"] == [] and impact["writes"]["unverified"] == [], impact
    assert impact["writes"]["acknowledged_total"] > 0
    # The guide's own expected results.
    rep = doc["report"]
    assert rep["pg_stat_replication"] == [
        {"standby": "node2", "state": "streaming", "sync_state": "sync", "replay_lag_bytes": "0"}
    ] or all(r["state"] == "streaming" and r["sync_state"] == "sync"
             for r in rep["pg_stat_replication"])
    for sentinel in rep["sentinels"]:
        assert sentinel["master_node"] == "node1" and sentinel["other_sentinels"] == 2
        assert sentinel["ckquorum"].startswith("OK")
    assert {n: v["backend_health"] for n, v in rep["nodes"].items()} == {"node1": 200,
                                                                         "node2": 200}
    assert rep["front_door"]["health"] == 200
    # Secrets: never in any process's argv on any host, nor in the run journal.
    secrets = _secrets(inventory)
    assert secrets and ps.samples
    for text in ps.samples:
        for s in secrets:
            assert s not in text
    for journal in (inventory.parent / "runs").rglob("journal.jsonl"):
        body = journal.read_text()
        for s in secrets:
            assert s not in body


def test_after_upgrade_the_vip_is_keepalived_s_and_node2_serves(up_lab: Lab,
                                                               inventory: Path) -> None:
    status = up_lab.status()
    assert status["service_address"]["static_owner"] is None
    node2 = up_lab.sh("node2", "supervisorctl status").stdout
    for program in ("patroni", "backend", "frontend", "nginx", "keepalived", "sentinel"):
        assert f"{program} " in node2 and "RUNNING" in node2.split(f"{program} ")[1][:40]
    again = hapair("upgrade", "-i", str(inventory), "-y", "-o", "json", timeout=UPGRADE_TIMEOUT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["already_upgraded"] is True  # nothing left to change
