"""Tear the lab down completely, from any state: built, half-built, or after a crash.

Works from what exists on the machine (namespaces named hapair-*, the bridge, hp-* cables),
not from the state file, which may be missing or stale. Idempotent.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from hapair.errors import Refused, StepFailed
from hapair.lab import local, net, procs, quota
from hapair.lab.config import BRIDGE, LabConfig
from hapair.lab.hostfs import remove_created_mountpoints

KILL_TIMEOUT = 15.0


def teardown(cfg: LabConfig, say: Callable[[str], None]) -> None:
    namespaces = net.lab_netns()
    if namespaces or procs.lab_mount_pids(cfg.lab_dir):
        say(f"stopping every process of the lab ({', '.join(namespaces) or 'orphaned hosts'})")
        _kill_lab_processes(namespaces, cfg.lab_dir)
    for ns in namespaces:
        local.run(["ip", "netns", "delete", ns], check=False)
    for veth in net.leftover_veths():
        local.run(["ip", "link", "delete", veth], check=False)
    if net.link_exists(BRIDGE):
        say(f"removing bridge {BRIDGE}")
        local.run(["ip", "link", "delete", BRIDGE])
    removed = quota.remove_all()  # empty now that the processes are gone
    if removed:
        say(f"removed CPU quota cgroups: {', '.join(removed)}")
    _unmount_under(cfg.lab_dir)
    _remove_lab_dir(cfg, say)
    _check_gone(cfg)


def _lab_pids(namespaces: list[str], lab_dir: Path) -> list[int]:
    # In a lab netns (`ip netns pids`), or in a host's mount namespace whose netns name is
    # already gone (a half-removed lab).
    pids = {p for ns in namespaces for p in procs.netns_pids(ns)}
    return sorted(pids | set(procs.lab_mount_pids(lab_dir)))


def _kill_lab_processes(namespaces: list[str], lab_dir: Path) -> None:
    """SIGKILL every process of the lab, by pid. A host's PID 1 takes its PID namespace down."""

    def all_dead() -> bool:
        pids = _lab_pids(namespaces, lab_dir)
        procs.kill_pids(pids, signal.SIGKILL)
        return not pids

    if not procs.wait_until(all_dead, KILL_TIMEOUT, interval=0.2):
        left = _lab_pids(namespaces, lab_dir)
        raise StepFailed(f"lab processes survive SIGKILL after {KILL_TIMEOUT:g}s: {left}")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if (mount_point + "/").startswith(prefix):
            found.append(mount_point)
    return found


def _unmount_under(path: Path) -> None:
    # Host mounts live in the hosts' private namespaces and vanish with them; this only
    # catches mounts someone made by hand in the machine's namespace.
    for mount_point in sorted(_mounts_under(path), key=len, reverse=True):
        local.run(["umount", "-l", mount_point], check=False)


def _remove_lab_dir(cfg: LabConfig, say: Callable[[str], None]) -> None:
    lab = cfg.lab_dir
    if not lab.exists():
        return
    if not cfg.marker.exists() and any(lab.iterdir()):
        raise Refused(
            f"{lab} is not empty and has no {cfg.marker.name} marker: not a lab "
            "directory, refusing to delete it (set HAPAIR_LAB_DIR?)"
        )
    removed = remove_created_mountpoints(lab)
    if removed:
        say(f"removed mount points the lab created: {', '.join(removed)}")
    say(f"removing {lab}")
    shutil.rmtree(lab)


def _check_gone(cfg: LabConfig) -> None:
    left = []
    if net.lab_netns():
        left.append(f"namespaces {net.lab_netns()}")
    if net.link_exists(BRIDGE):
        left.append(f"bridge {BRIDGE}")
    if _mounts_under(cfg.lab_dir):
        left.append(f"mounts {_mounts_under(cfg.lab_dir)}")
    if cfg.lab_dir.exists():
        left.append(str(cfg.lab_dir))
    if quota.leftover():
        left.append(f"cgroups {quota.leftover()}")
    if procs.lab_mount_pids(cfg.lab_dir):
        left.append(f"processes {procs.lab_mount_pids(cfg.lab_dir)}")
    if left:
        raise StepFailed("lab down left: " + "; ".join(left))
