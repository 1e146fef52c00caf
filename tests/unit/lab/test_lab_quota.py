"""The pure parts of per-host CPU quotas: which hierarchy, which paths, which values."""

from __future__ import annotations

from pathlib import Path

import pytest

from hapair.errors import UsageError
from hapair.lab.quota import (
    Hierarchy,
    cgroup_of,
    check_cpus,
    find_hierarchy,
    parse_quota,
    quota_files,
    quota_us,
    relative,
)

V1_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,nosuid,nodev,noexec,relatime,cpu 0 0
"""
V1_JOINED = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        (V1_MOUNTS, Hierarchy(1, Path("/sys/fs/cgroup/cpu"))),  # hybrid: v1 cpu wins
        (V1_JOINED, Hierarchy(1, Path("/sys/fs/cgroup/cpu,cpuacct"))),
        (V2_MOUNTS, Hierarchy(2, Path("/sys/fs/cgroup"))),
        ("proc /proc proc rw 0 0\n", None),
        ("", None),
    ],
)
def test_find_hierarchy(mounts: str, expected: Hierarchy | None) -> None:
    assert find_hierarchy(mounts) == expected


def test_host_paths() -> None:
    h = Hierarchy(1, Path("/sys/fs/cgroup/cpu"))
    assert h.host_dir("node2") == Path("/sys/fs/cgroup/cpu/hapair-lab/node2")
    assert relative("node2") == "/hapair-lab/node2"


@pytest.mark.parametrize(
    ("version", "cpus", "files"),
    [
        (1, 0.4, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "40000"}),
        (1, 1.5, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000"}),
        (1, 0, {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"}),
        (2, 0.5, {"cpu.max": "50000 100000"}),
        (2, 0, {"cpu.max": "max 100000"}),
        (2, 0.01, {"cpu.max": "1000 100000"}),
    ],
)
def test_quota_files_and_read_back(version: int, cpus: float, files: dict[str, str]) -> None:
    assert quota_files(version, cpus) == files
    assert list(quota_files(version, cpus)) == list(files)  # v1: period written first
    assert parse_quota(version, files) == pytest.approx(cpus)


def test_quota_us_has_the_kernel_floor() -> None:
    assert quota_us(0.001) == 1000
    assert quota_us(0) is None


@pytest.mark.parametrize("bad", [0.005, -1.0])
def test_check_cpus_refuses_tiny_or_negative(bad: float) -> None:
    with pytest.raises(UsageError, match="--cpus"):
        check_cpus(bad)


@pytest.mark.parametrize("good", [0.0, 0.01, 0.4, 2.0])
def test_check_cpus_accepts(good: float) -> None:
    assert check_cpus(good) == good


V1_PROC = """\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/hapair-lab/node1
0::/
"""
V1_PROC_JOINED = "3:cpu,cpuacct:/hapair-lab/witness\n1:name=systemd:/init.scope\n"
V2_PROC = "0::/hapair-lab/node2\n"


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        (V1_PROC, 1, "/hapair-lab/node1"),
        (V1_PROC_JOINED, 1, "/hapair-lab/witness"),
        (V1_PROC, 2, "/"),
        (V2_PROC, 2, "/hapair-lab/node2"),
        (V2_PROC, 1, None),
    ],
)
def test_cgroup_of(text: str, version: int, expected: str | None) -> None:
    assert cgroup_of(text, version) == expected
