"""The engines helper's pure builders (no root, no lab): cgroup mounts from mountinfo, the
dockerd start script, docker's links in `ip -o link` output, daemon.json, the NAT rule."""

from __future__ import annotations

import ipaddress

import engines as eng
import pytest

from hapair.lab.config import LabConfig, LabHost

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
42 31 0:39 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct,release_agent=/x
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
24 1 0:22 / /proc rw,relatime - proc proc rw
"""
V2 = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


@pytest.mark.parametrize(("mountinfo", "expected"), [
    (HYBRID, [("/sys/fs/cgroup/cpu", "cgroup", "cpu"),
              ("/sys/fs/cgroup/devices", "cgroup", "devices"),
              ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct"),
              ("/sys/fs/cgroup/systemd", "cgroup", "xattr,name=systemd"),
              ("/sys/fs/cgroup/unified", "cgroup2", "nsdelegate")]),
    (V2, [("/sys/fs/cgroup", "cgroup2", "nsdelegate,memory_recursiveprot")]),
    ("24 1 0:22 / /proc rw - proc proc rw\n", []),
])
def test_cgroup_mounts(mountinfo: str, expected: list[tuple[str, str, str]]) -> None:
    assert eng.cgroup_mounts(mountinfo) == expected


def test_named_hierarchy_without_controllers_mounts_with_none() -> None:
    line = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    assert eng.cgroup_mounts(line) == [("/sys/fs/cgroup/systemd", "cgroup", "none,name=systemd")]


def test_start_script_v1_mounts_a_tmpfs_then_each_hierarchy_then_execs_dockerd() -> None:
    lines = eng.start_script(eng.cgroup_mounts(HYBRID)).splitlines()
    assert lines[:2] == ["#!/bin/sh", "set -e"]
    assert "mount -t tmpfs" in lines[2] and lines[2].endswith("/sys/fs/cgroup")
    assert ("mkdir -p /sys/fs/cgroup/cpu; mountpoint -q /sys/fs/cgroup/cpu || "
            "mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu") in lines
    assert "mount -t cgroup -o xattr,name=systemd cgroup /sys/fs/cgroup/systemd" in lines[6]
    assert lines[-1] == f"exec /usr/sbin/dockerd --config-file {eng.CONF_DIR}/daemon.json"


def test_start_script_v2_needs_no_tmpfs() -> None:
    script = eng.start_script(eng.cgroup_mounts(V2))
    assert "tmpfs" not in script
    assert "mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup" in script


IP_LINK = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT
2: eth0@if512: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
3: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN
4: br-0a1b2c3d4e5f: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP
6: veth3f1e2d1@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br-0a1b
"""


@pytest.mark.parametrize(("output", "expected"), [
    (IP_LINK, ["docker0", "br-0a1b2c3d4e5f", "veth3f1e2d1"]),
    ("1: lo: <LOOPBACK> mtu 65536\n2: eth0@if9: <UP> mtu 1500\n", []),
    ("", []),
])
def test_docker_links(output: str, expected: list[str]) -> None:
    assert eng.docker_links(output) == expected


def test_daemon_config_keeps_everything_on_the_host_and_iptables_off() -> None:
    c = eng.daemon_config("node2")
    assert c["hosts"] == ["unix:///run/docker.sock", f"unix://{eng.ENGINE_DIR}/docker.sock"]
    assert c["data-root"] == f"{eng.ENGINE_DIR}/data" and c["exec-root"] == "/run/docker"
    assert (c["iptables"], c["ip-masq"]) == (False, False)
    assert c["cgroup-parent"] == "/hapair-lab-docker/node2"
    # asked for (the compose upgrade test): dockerd's own rules, in the host's netns
    assert (eng.daemon_config("node2", iptables=True)["iptables"],
            eng.daemon_config("node2", iptables=True)["ip-masq"]) == (True, True)


def test_masquerade_spares_the_lab_subnet() -> None:
    host = LabHost("node1", "10.99.0.11", ("db",))
    assert eng.masquerade_rules(host, "10.99.0.0/24") == [
        ["-A", eng.NAT_CHAIN, "-o", "eth0", "!", "-s", "10.99.0.0/24", "-j", "MASQUERADE"]]


@pytest.mark.parametrize(("lab_dir", "fits"), [("/var/lib/hapair-lab", True), ("/x" * 40, False)])
def test_docker_host_refuses_a_socket_path_too_long(lab_dir: str, fits: bool) -> None:
    from pathlib import Path

    cfg = LabConfig(Path(lab_dir), ipaddress.IPv4Network("10.99.0.0/24"))
    if fits:
        assert eng.docker_host(cfg, "witness") == (
            f"unix://{lab_dir}/hosts/witness/root{eng.ENGINE_DIR}/docker.sock")
    else:
        with pytest.raises(ValueError, match="too long"):
            eng.docker_host(cfg, "witness")
