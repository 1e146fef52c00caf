"""A real 3-member etcd 3.4 cluster on loopback from rendered configs, probed with the
etcdctl builders and judged by the parsers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hapair.components.etcd import (
    ETCDCTL_ENV,
    EtcdMember,
    EtcdParams,
    check_leader,
    check_members,
    check_quorum,
    endpoint_health_argv,
    endpoint_status_argv,
    etcd_argv,
    member_list_argv,
    parse_endpoint_health,
    parse_endpoint_status,
    parse_member_list,
    render_etcd_config,
)

pytestmark = pytest.mark.skipif(
    shutil.which("etcd") is None or shutil.which("etcdctl") is None,
    reason="etcd-server/etcd-client not installed",
)

MEMBERS = tuple(EtcdMember(n, "127.0.0.1", 18500 + i, 18503 + i)
                for i, n in enumerate(["node1", "node2", "witness"]))


def etcdctl(argv: list[str]) -> str:
    # `endpoint health` exits 1 when a member is down but still prints the JSON
    env = {"PATH": "/usr/bin:/bin", **ETCDCTL_ENV}
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env,
                          check=False).stdout


def test_three_member_cluster(procs, workdir: Path, wait: Callable[..., object],
                              write_file: Callable[..., Path]) -> None:
    started = {}
    for m in MEMBERS:
        params = EtcdParams(m.name, MEMBERS, "hapair-test", config_path=f"{workdir}/{m.name}.yaml",
                            data_dir=f"{workdir}/{m.name}", listen_loopback=False)
        write_file(render_etcd_config(params))
        started[m.name] = procs.spawn(etcd_argv(params), f"etcd-{m.name}")

    def quorum_ok() -> bool:
        return check_quorum(parse_endpoint_health(etcdctl(endpoint_health_argv(MEMBERS))), 3).ok

    wait(quorum_ok, 30, "etcd quorum")
    health = parse_endpoint_health(etcdctl(endpoint_health_argv(MEMBERS)))
    assert check_quorum(health, 3).reason == "etcd quorum: 3/3 healthy"
    assert check_leader(parse_endpoint_status(etcdctl(endpoint_status_argv(MEMBERS)))).ok
    assert check_members(parse_member_list(etcdctl(member_list_argv(MEMBERS))), MEMBERS).ok

    procs.stop(started["witness"])
    health = parse_endpoint_health(etcdctl(endpoint_health_argv(MEMBERS)))
    check = check_quorum(health, 3)
    assert check.ok and check.reason.startswith("etcd quorum: 2/3 healthy; down: ")

    procs.stop(started["node2"])
    health = parse_endpoint_health(etcdctl(endpoint_health_argv(MEMBERS[:1])))
    check = check_quorum(health, 3)
    assert not check.ok and "no quorum" in check.reason
