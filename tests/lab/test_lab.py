"""The lab, for real: hosts, SSH, the single-server stack, faults, and clean-up.

Tests run in file order and each one restores what it breaks (finalizers), so a failure in
one does not cascade. The last two tests rebuild over a broken lab and tear it all down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lab_helpers import Lab, run_cli

from hapair.errors import Refused
from hapair.exec.ssh import SSHTransport
from hapair.inventory.load import load_inventory
from hapair.lab import manager, net, procs, quota
from hapair.lab.state import load as load_state

pytestmark = pytest.mark.lab

CTL = "supervisorctl -c /etc/supervisor/supervisord.conf"
WAIT = 60.0


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    if not procs.wait_until(predicate, timeout, interval=0.5):
        raise AssertionError(f"not true after {timeout:g}s: {what}")


def tcp_open(address: str, port: int, timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def reach_from(lab: Lab, host: str, address: str, port: int = 22) -> bool:
    """Can `host` open a TCP connection to address:port (bounded to 3 s)?"""
    script = f"timeout 3 bash -c '</dev/tcp/{address}/{port}'"
    return lab.sh(host, script, check=False).returncode == 0


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment; traffic stays on the lab's bridge.
    with httpx.Client(base_url=lab.cfg.front_door_url, trust_env=False, timeout=15) as c:
        yield c


# -- hosts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["node1", "node2", "witness"])
def test_each_host_has_its_own_identity(lab: Lab, host: str) -> None:
    out = lab.sh(host, "hostname; ip -4 -o addr show dev eth0; cat /proc/1/comm").stdout
    hostname, *rest = out.splitlines()
    assert hostname == host
    assert f"inet {lab.address(host)}/24" in "\n".join(rest)
    assert rest[-1] == "supervisord"  # init of the host: reaps orphans, runs every service
    # Only a host that owns the service address carries it.
    assert (f"inet {lab.cfg.service_address}/32" in out) == (host == "node1")


def test_process_tables_are_separate(lab: Lab) -> None:
    node1 = lab.sh("node1", "ps -e -o comm=").stdout.split()
    node2 = lab.sh("node2", "ps -e -o comm=").stdout.split()
    assert "postgres" in node1 and "redis-server" in node1 and "nginx" in node1
    assert "postgres" not in node2 and "redis-server" not in node2
    assert set(node2) <= {"supervisord", "sshd", "ps", "sh"}


def test_paths_are_per_host(lab: Lab) -> None:
    assert lab.sh("node1", "test -f /opt/cms/backend/manage.py", check=False).returncode == 0
    assert lab.sh("node2", "ls -A /opt/cms").stdout.strip() == ""
    marker = f"/tmp/hapair-lab-test-{os.getpid()}"
    lab.sh("node2", f"echo node2 > {marker}")
    try:
        assert lab.sh("witness", f"test -e {marker}", check=False).returncode != 0
        assert not Path(marker).exists()  # nor on the controller
    finally:
        lab.sh("node2", f"rm -f {marker}")


def test_exec_passes_stdin_stdout_and_exit_code(lab: Lab) -> None:
    res = run_cli("exec", "witness", "--", "sh", "-c", "cat; exit 7", input="hello\n", check=False)
    assert (res.returncode, res.stdout) == (7, "hello\n")


def test_unknown_host_is_a_usage_error(lab: Lab) -> None:
    for args in (["exec", "nodeX", "--", "true"], ["crash", "nodeX"], ["partition", "nodeX"]):
        res = run_cli(*args, check=False)
        assert res.returncode == 2, res.stderr
        assert "valid hosts: node1, node2, witness" in res.stderr


def test_status_json(lab: Lab) -> None:
    st = lab.status()
    assert st["front_door"] == lab.cfg.front_door_url
    assert Path(st["inventory"]).is_file()
    by_name = {h["name"]: h for h in st["hosts"]}
    assert all(h["alive"] for h in by_name.values())
    node1 = {s["name"]: s["state"] for s in by_name["node1"]["services"]}
    assert node1 == dict.fromkeys(
        ["backend", "frontend", "nginx", "postgres", "redis", "s3", "sshd"], "running"
    )
    assert [s["name"] for s in by_name["node2"]["services"]] == ["sshd"]


# -- SSH ----------------------------------------------------------------------------------------


def _ssh(inventory_path: Path, host: str, host_key: str | None = None) -> SSHTransport:
    h = next(h for h in load_inventory(inventory_path).hosts if h.name == host)
    return SSHTransport(
        h.name, h.address, h.ssh.port, h.ssh.user, str(h.ssh.key), host_key or h.ssh.host_key
    )


@pytest.mark.parametrize("host", ["node1", "node2", "witness"])
def test_ssh_with_pinned_host_key(lab: Lab, host: str) -> None:
    with _ssh(lab.cfg.inventory_file, host) as t:
        assert t.run(["hostname"]).stdout.strip() == host


def test_changed_host_key_is_refused(lab: Lab) -> None:
    key = "/etc/ssh/ssh_host_ed25519_key"
    lab.sh("witness", f"cp -p {key} {key}.bak && cp -p {key}.pub {key}.pub.bak")
    try:
        # The host is "rebuilt": a new host key, sshd restarted. The inventory's pin is old.
        lab.sh("witness", f"rm -f {key} {key}.pub && ssh-keygen -q -t ed25519 -N '' -f {key}")
        lab.sh("witness", f"{CTL} restart sshd")
        wait_for(lambda: tcp_open(lab.address("witness"), 22), what="witness sshd back")
        t = _ssh(lab.cfg.inventory_file, "witness")
        with pytest.raises(Refused, match="host key mismatch"):
            t.run(["true"])
        t.close()
    finally:
        lab.sh("witness", f"mv -f {key}.bak {key} && mv -f {key}.pub.bak {key}.pub")
        lab.sh("witness", f"{CTL} restart sshd")
        wait_for(lambda: tcp_open(lab.address("witness"), 22), what="witness sshd back")
    with _ssh(lab.cfg.inventory_file, "witness") as t:
        assert t.run(["hostname"]).stdout.strip() == "witness"


# -- the single-server stack through the front door -------------------------------------------


def test_article_create_read_list(web: httpx.Client) -> None:
    title = f"lab article {time.time_ns()}"
    created = web.post("/api/articles/", json={"title": title, "body": "from the lab test"})
    assert created.status_code == 201, created.text
    art = created.json()
    assert created.headers["x-served-by"] == "cms-backend"
    got = web.get(f"/api/articles/{art['id']}/")
    assert got.status_code == 200 and got.json()["title"] == title
    listed = web.get("/api/articles/", params={"after": art["id"] - 1})
    assert [a["id"] for a in listed.json()] == [art["id"]]
    page = web.get("/")
    assert page.status_code == 200 and page.headers["x-served-by"] == "cms-frontend"
    assert title in page.text


def test_media_upload_and_read_back(web: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    up = web.post("/api/media/", files={"file": ("photo.JPG", data, "image/jpeg")})
    assert up.status_code == 201, up.text
    url = up.json()["url"]
    assert url.startswith("/media/") and url.endswith(".jpg")
    back = web.get(url)
    assert back.status_code == 200 and back.content == data


def test_session_round_trip_with_cookie(lab: Lab) -> None:
    with httpx.Client(base_url=lab.cfg.front_door_url, trust_env=False, timeout=15) as c:
        assert c.get("/api/session/").json() == {}
        stored = c.post("/api/session/", json={"cart": [1, 2, 3]})
        assert stored.status_code == 200 and "sessionid" in c.cookies
        assert c.get("/api/session/").json() == {"cart": [1, 2, 3]}
    with httpx.Client(base_url=lab.cfg.front_door_url, trust_env=False, timeout=15) as other:
        assert other.get("/api/session/").json() == {}  # no cookie, no session


def test_frontend_routes(web: httpx.Client) -> None:
    health = web.get("/api/health")
    assert health.status_code == 200 and health.headers["x-served-by"] == "cms-frontend"
    search = web.get("/api/search", params={"q": "lab article"})
    assert search.status_code == 200 and search.headers["x-served-by"] == "cms-frontend"


def test_nginx_listens_only_on_the_service_address(lab: Lab) -> None:
    assert tcp_open(lab.cfg.service_address, 80)
    assert not tcp_open(lab.address("node1"), 80)


def test_health_names_the_database_when_it_is_down(lab: Lab, web: httpx.Client) -> None:
    assert web.get("/health/").status_code == 200
    lab.sh("node1", f"{CTL} stop postgres")
    try:
        res = web.get("/health/")
        assert res.status_code == 503
        assert res.json()["failing"] == ["database"]
    finally:
        lab.sh("node1", f"{CTL} start postgres")
    wait_for(lambda: web.get("/health/").status_code == 200, what="/health/ 200 again")


# -- faults -------------------------------------------------------------------------------------


@pytest.fixture
def healed(lab: Lab) -> Iterator[None]:
    yield
    for host in ("node1", "node2", "witness"):
        run_cli("heal", host, check=False)


def test_full_partition(lab: Lab, healed: None) -> None:
    n1 = lab.address("node1")
    assert tcp_open(n1, 22) and reach_from(lab, "node2", n1)
    lab.cli("partition", "node1")
    assert not tcp_open(n1, 22)  # the controller loses it too
    assert not tcp_open(lab.cfg.service_address, 80)
    assert not reach_from(lab, "node2", n1)
    assert not reach_from(lab, "node1", lab.address("witness"))
    assert reach_from(lab, "node1", "127.0.0.1", 5432)  # the host itself still works
    assert {h["name"]: h["partitioned_from"] for h in lab.status()["hosts"]}["node1"] == ["all"]
    lab.cli("heal", "node1")
    assert tcp_open(n1, 22) and reach_from(lab, "node2", n1)


def test_partition_from_one_peer(lab: Lab, healed: None) -> None:
    n1 = lab.address("node1")
    lab.cli("partition", "node1", "--from", "node2")
    assert not reach_from(lab, "node2", n1)
    assert not reach_from(lab, "node2", lab.cfg.service_address, 80)
    assert not reach_from(lab, "node1", lab.address("node2"))
    assert reach_from(lab, "witness", n1)
    assert tcp_open(n1, 22)
    lab.cli("heal", "node1", "--from", "node2")
    assert reach_from(lab, "node2", n1)


def test_crash_and_boot(lab: Lab, web: httpx.Client) -> None:
    before = load_state(lab.cfg.state_file).host("node1")
    survivors: list[int] = []
    try:
        lab.cli("crash", "node1")
        assert before.pidns is not None
        survivors = procs.pids_in_ns("pid", before.pidns)
        assert survivors == []  # every process of the host died at once
        assert not tcp_open(lab.address("node1"), 22)
        with pytest.raises(httpx.TransportError):
            web.get("/health/", timeout=3)
        down = run_cli("exec", "node1", "--", "true", check=False)
        assert down.returncode == 1 and "node1 is down" in down.stderr
        assert run_cli("crash", "node1", check=False).returncode == 3  # already down
        lab.cli("boot", "node1")
    finally:
        if not any(h["alive"] for h in lab.status()["hosts"] if h["name"] == "node1"):
            run_cli("boot", "node1", check=False)
    after = load_state(lab.cfg.state_file).host("node1")
    assert after.pid1 != before.pid1 or after.pid1_start != before.pid1_start
    assert tcp_open(lab.address("node1"), 22)
    wait_for(lambda: web.get("/health/").status_code == 200, what="/health/ after boot")
    assert web.get("/api/articles/").json(), "the articles survived the power loss"
    node1 = next(h for h in lab.status()["hosts"] if h["name"] == "node1")
    assert {s["name"]: s["state"] for s in node1["services"]} == dict.fromkeys(
        ["backend", "frontend", "nginx", "postgres", "redis", "s3", "sshd"], "running"
    )


def test_a_partitioned_host_reboots_still_partitioned(lab: Lab, healed: None) -> None:
    w = lab.address("witness")
    lab.cli("partition", "witness")
    lab.cli("crash", "witness")
    lab.cli("boot", "witness")  # readiness is checked from inside: no network needed
    assert lab.sh("witness", "hostname").stdout.strip() == "witness"
    assert not tcp_open(w, 22)  # the network fault outlives the host's power cycle
    lab.cli("heal", "witness")
    assert tcp_open(w, 22)


def test_service_address_changes_hands(lab: Lab) -> None:
    cfg, sa = lab.cfg, lab.cfg.service_address

    def holders() -> list[str]:
        return [
            h.name
            for h in cfg.hosts
            if f"inet {sa}/32" in lab.sh(h.name, "ip -4 -o addr show dev eth0").stdout
        ]

    try:
        manager.set_service_address_owner(cfg, None, lambda _m: None)  # e.g. keepalived's now
        assert holders() == []
        assert load_state(cfg.state_file).service_address_owner is None
        manager.set_service_address_owner(cfg, "node2", lambda _m: None)
        assert holders() == ["node2"]
    finally:
        manager.set_service_address_owner(cfg, "node1", lambda _m: None)
    assert holders() == ["node1"]


# -- rebuild over a broken lab, and tear down -------------------------------------------------


def test_up_over_a_broken_leftover(lab: Lab) -> None:
    st = load_state(lab.cfg.state_file)
    # A lab killed hard: every host's PID 1 gone, a stray process left in a netns, the state
    # file gone; namespaces, bridge and per-host trees stay behind.
    stray = subprocess.Popen(
        ["ip", "netns", "exec", "hapair-node2", "sleep", "600"], start_new_session=True
    )
    try:
        procs.kill_pids([h.pid1 for h in st.hosts.values() if h.pid1], signal.SIGKILL)
        lab.cfg.state_file.unlink()
        res = run_cli("up", "--bare", timeout=600)
        assert res.returncode == 0
        assert stray.wait(timeout=10) == -signal.SIGKILL
        assert all(h["alive"] for h in lab.status()["hosts"])
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(timeout=10)


def test_down_leaves_nothing(lab: Lab) -> None:
    lab.cli("down")
    lab_dir = lab.cfg.lab_dir
    assert net.lab_netns() == []
    assert not net.link_exists("hapair0")
    assert net.leftover_veths() == []
    assert not lab_dir.exists()
    assert procs.lab_mount_pids(lab_dir) == []
    assert procs.processes_touching(lab_dir) == []
    assert [
        ln
        for ln in Path("/proc/self/mountinfo").read_text().splitlines()
        if f" {lab_dir}/" in ln or f" {lab_dir} " in ln
    ] == []
    again = run_cli("down")  # idempotent
    assert again.returncode == 0


# -- CPU quotas (after the tear-down: a bare lab of its own, down again at the end) ---------


def _cgroups_of(pids: list[int], version: int) -> set[str | None]:
    found = set()
    for pid in pids:
        try:
            found.add(quota.cgroup_of(Path(f"/proc/{pid}/cgroup").read_text(), version))
        except FileNotFoundError:
            continue  # exited meanwhile
    return found


def test_cpu_quota_holds_the_host_and_down_removes_it(lab: Lab) -> None:
    h = quota.hierarchy()
    try:
        run_cli("up", "--bare", timeout=600)
        doc = json.loads(run_cli("quota", "node2", "--cpus", "0.25", "-o", "json").stdout)
        assert doc["cpus"] == pytest.approx(0.25) and doc["cgroup"] == str(h.host_dir("node2"))
        assert quota.read(h, "node2") == pytest.approx(0.25)
        assert quota.read(h, "node1") is None  # only the host asked for
        pidns = load_state(lab.cfg.state_file).host("node2").pidns
        assert pidns is not None
        assert _cgroups_of(procs.pids_in_ns("pid", pidns), h.version) == {"/hapair-lab/node2"}
        # What sshd starts later is inside too, and a busy loop there gets throttled.
        with _ssh(lab.cfg.inventory_file, "node2") as t:
            assert "/hapair-lab/node2" in t.run(["cat", "/proc/self/cgroup"]).stdout
            t.run(["timeout", "2", "sh", "-c", "while :; do :; done"], check=False)
        stat = (h.host_dir("node2") / "cpu.stat").read_text()
        assert int(stat.split("nr_throttled ")[1].split()[0]) > 0
        assert {x["name"]: x["cpu_quota"] for x in lab.status()["hosts"]} == {
            "node1": None, "node2": pytest.approx(0.25), "witness": None}
        lab.cli("crash", "node2")
        lab.cli("boot", "node2")  # a reboot keeps the host's quota
        pidns = load_state(lab.cfg.state_file).host("node2").pidns
        assert pidns is not None
        assert _cgroups_of(procs.pids_in_ns("pid", pidns), h.version) == {"/hapair-lab/node2"}
        lab.cli("down")
        assert quota.leftover() == [] and not h.base.exists()
    finally:
        run_cli("down", check=False)
