"""Patroni 4.1.5 with a rendered config adopts a RUNNING PostgreSQL 15 without restarting it,
and refuses to initdb an empty data directory when no leader exists (LAB_NOTES; DEFECTS #3).
Real etcd (3 members), real PostgreSQL, real Patroni; all on 127.0.0.1:185xx."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from hapair.components.common import Credential, Endpoint, Plain
from hapair.components.etcd import EtcdMember, EtcdParams, etcd_argv, render_etcd_config
from hapair.components.patroni import (
    PatroniNode,
    PatroniParams,
    check_cluster,
    check_no_pending_restart,
    list_argv,
    parse_cluster,
    parse_node_status,
    parse_patronictl_list,
    patroni_argv,
    render_patroni_config,
    validate_config_argv,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = Path(sys.executable).parent
PATRONI = VENV_BIN / "patroni"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (PG_BIN / "postgres").exists() or not PATRONI.exists()
    or shutil.which("etcd") is None,
    reason="needs root, PostgreSQL 15 binaries, etcd and patroni in the venv",
)

ETCD = tuple(EtcdMember(n, "127.0.0.1", 18506 + i, 18509 + i)
             for i, n in enumerate(["node1", "node2", "witness"]))
NODES = (PatroniNode("node1", "127.0.0.1", 18512, 18514),
         PatroniNode("node2", "127.0.0.1", 18513, 18515))
SU, REPL = Credential("postgres", Plain("su 'pw'")), Credential("replicator", Plain("repl-pw"))


def as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), user="postgres", capture_output=True, text=True,
                          timeout=60, check=check, cwd="/")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def pg_dir(workdir: Path, name: str) -> Path:
    path = workdir / name
    path.mkdir(mode=0o700)
    shutil.chown(path, "postgres", "postgres")
    return path


def patroni_params(workdir: Path, scope: str, data_dir: Path, nodes=NODES) -> PatroniParams:
    return PatroniParams(
        scope=scope, name="node1", nodes=nodes,
        etcd_hosts=tuple(Endpoint("127.0.0.1", m.client_port) for m in ETCD),
        data_dir=str(data_dir), bin_dir=str(PG_BIN), superuser=SU, replication=REPL,
        app_user="cms", app_database="cms", durability="async",
        config_path=f"{workdir}/patroni-{scope}.yml", socket_dir=f"{workdir}/sock",
        pgpass_path=f"{workdir}/sock/pgpass-{scope}", listen_loopback=False,
    )


@pytest.fixture
def etcd(procs, workdir: Path, wait, write_file) -> None:
    for m in ETCD:
        params = EtcdParams(m.name, ETCD, "patroni-test",
                            config_path=f"{workdir}/etcd-{m.name}.yaml",
                            data_dir=f"{workdir}/etcd-{m.name}", listen_loopback=False)
        write_file(render_etcd_config(params))
        procs.spawn(etcd_argv(params), f"etcd-{m.name}")
    wait(lambda: http_get("http://127.0.0.1:18506/health")[0] == 200, 30, "etcd")


def test_adopts_running_server_without_restart_and_never_initdbs(
        etcd, procs, workdir: Path, wait: Callable[..., object],
        write_file: Callable[..., Path]) -> None:
    sock = pg_dir(workdir, "sock")
    data = pg_dir(workdir, "data")
    pwfile = sock / "pw"
    pwfile.write_text(SU.password.reveal() + "\n")
    shutil.chown(pwfile, "postgres")
    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=peer",
                "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
    procs.spawn([str(PG_BIN / "postgres"), "-D", str(data), "-p", "18512", "-k", str(sock),
                 "-c", "listen_addresses=127.0.0.1"], "postgres", user="postgres")
    psql = [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(sock),
            "-p", "18512"]
    wait(lambda: as_postgres(*psql, "-c", "select 1", check=False).returncode == 0, 30, "pg up")
    as_postgres(*psql, "-c", "CREATE ROLE replicator REPLICATION LOGIN PASSWORD 'repl-pw'",
                "-c", "CREATE ROLE cms LOGIN PASSWORD 'x'", "-c", "CREATE DATABASE cms OWNER cms")
    as_postgres(*psql, "-d", "cms", "-c", "CREATE TABLE t AS SELECT generate_series(1, 500) x")
    pid_before = (data / "postmaster.pid").read_text().splitlines()[0]

    params = patroni_params(workdir, "cms", data)
    write_file(render_patroni_config(params), owner="postgres")
    procs.spawn(patroni_argv(params, str(PATRONI)), "patroni-cms", user="postgres")
    wait(lambda: http_get(NODES[0].rest_url("/primary"))[0] == 200, 60, "/primary 200")

    assert (data / "postmaster.pid").read_text().splitlines()[0] == pid_before  # no restart
    assert as_postgres(*psql, "-d", "cms", "-c", "select count(*) from t").stdout.strip() == "500"
    view = parse_cluster(http_get(NODES[0].rest_url("/cluster"))[1])
    assert check_cluster(view, ["node1"], "async", 0).reason == "patroni cms: leader node1"
    pending = check_no_pending_restart(view)
    assert not pending.ok and "wal_log_hints: off->on" in pending.reason
    status = parse_node_status(http_get(NODES[0].rest_url("/patroni"))[1])
    assert (status.role, status.state, status.scope) == ("primary", "running", "cms")
    listed = as_postgres(*list_argv(params.config_path, str(VENV_BIN / "patronictl")))
    ctl = parse_patronictl_list(listed.stdout)
    assert [(m.name, m.role, m.state) for m in ctl.members] == [("node1", "leader", "running")]
    hba = (data / "pg_hba.conf").read_text()
    assert "host replication replicator 127.0.0.1/32 scram-sha-256" in hba

    # A second cluster whose only node has an EMPTY data dir and no leader: no initdb.
    empty = pg_dir(workdir, "empty")
    lonely = (PatroniNode("node1", "127.0.0.1", 18517, 18516), NODES[1])
    refused = patroni_params(workdir, "empty-scope", empty, nodes=lonely)
    write_file(render_patroni_config(refused), owner="postgres")
    proc = procs.spawn(patroni_argv(refused, str(PATRONI)), "patroni-empty", user="postgres")
    proc.wait(60)
    assert proc.returncode != 0
    log = procs.log("patroni-empty")
    assert "Running custom bootstrap script: /bin/false" in log
    assert "Failed to bootstrap cluster" in log
    assert not any(workdir.glob("empty*/PG_VERSION")), "Patroni ran initdb"


def test_validate_config_accepts_rendered_file(etcd, workdir: Path,
                                               write_file: Callable[..., Path]) -> None:
    # Patroni refuses 127.0.0.1 as connect_address; these addresses are only validated,
    # never contacted (etcd, which is contacted, is on 127.0.0.1).
    nodes = (PatroniNode("node1", "127.0.0.2"), PatroniNode("node2", "127.0.0.3"))
    params = patroni_params(workdir, "cms", workdir / "nodata", nodes=nodes)
    (workdir / "sock").mkdir()
    write_file(render_patroni_config(params))
    result = subprocess.run(validate_config_argv(params, str(PATRONI)), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
