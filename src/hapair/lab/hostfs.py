"""Build a host's disk: its per-host tree, sshd with its own host key, supervisord as init.

Runs on the controller before the host first boots. Also creates the (empty) mount points the
machine lacks, recording them so `lab down` removes exactly those.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
from pathlib import Path

from hapair.lab import local
from hapair.lab.config import LabConfig, LabHost
from hapair.lab.layout import (
    BIND_PATHS,
    HOST_SUBDIRS,
    RUN_DIRS,
    HostPath,
    sshd_config,
    sshd_program,
    supervisord_conf,
)

CREATED_MOUNTPOINTS = "created-mountpoints.json"


def _ids(hp: HostPath) -> tuple[int, int]:
    return pwd.getpwnam(hp.owner).pw_uid, grp.getgrnam(hp.group).gr_gid


def known(hp: HostPath) -> bool:
    """Whether the entry's user and group exist on this machine (packages create them)."""
    try:
        _ids(hp)
    except KeyError:
        return False
    return True


def make_dir(path: Path, hp: HostPath) -> None:
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = _ids(hp)
    os.chown(path, uid, gid)
    os.chmod(path, hp.mode)  # after chown: chown clears setgid bits


def write(path: Path, text: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def ensure_mountpoints(cfg: LabConfig) -> list[str]:
    """Create missing mount points on the machine (only where absent) and remember them."""
    record = cfg.lab_dir / CREATED_MOUNTPOINTS
    created: list[str] = json.loads(record.read_text()) if record.exists() else []
    for hp in BIND_PATHS:
        p = Path(hp.path)
        if not p.exists():
            p.mkdir(parents=True, mode=0o755)
            created.append(hp.path)
    write(record, json.dumps(sorted(set(created))) + "\n", 0o600)
    return created


def remove_created_mountpoints(lab_dir: Path) -> list[str]:
    """Remove the mount points `lab up` created, if still empty (never anything else)."""
    record = lab_dir / CREATED_MOUNTPOINTS
    if not record.exists():
        return []
    removed = []
    for path in sorted(json.loads(record.read_text()), key=len, reverse=True):
        p = Path(path)
        if p.is_dir() and not os.path.ismount(p) and not any(p.iterdir()):
            p.rmdir()
            removed.append(path)
    return removed


def build_host_tree(cfg: LabConfig, host: LabHost, authorized_key: str) -> str:
    """Create the host's tree and base config; returns its ed25519 public host key line."""
    root = cfg.host_root(host.name)
    cfg.host_dir(host.name).mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.host_dir(host.name), 0o700)
    for hp in (*BIND_PATHS, *HOST_SUBDIRS):
        if known(hp):
            make_dir(root / hp.path.lstrip("/"), hp)
        else:  # e.g. no `etcd` user yet: a root-owned dir is still a valid mount point
            make_dir(root / hp.path.lstrip("/"), HostPath(hp.path, mode=hp.mode))
    etc = root / "etc"
    _base_ssh(etc / "ssh", host, authorized_key)
    write(etc / "supervisor" / "supervisord.conf", supervisord_conf())
    write(etc / "supervisor" / "conf.d" / "sshd.conf", sshd_program())
    # nginx needs its MIME table in every host's /etc/nginx (the dir is per host).
    shutil.copy2("/etc/nginx/mime.types", etc / "nginx" / "mime.types")
    return " ".join((etc / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2])


def _base_ssh(ssh: Path, host: LabHost, authorized_key: str) -> None:
    for name in ("moduli", "ssh_config"):
        if Path("/etc/ssh", name).exists():
            shutil.copy2(Path("/etc/ssh", name), ssh / name)
    key = ssh / "ssh_host_ed25519_key"
    if not key.exists():
        local.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"root@{host.name}",
                "-f",
                str(key),
            ]
        )
    os.chmod(key, 0o600)
    write(ssh / "sshd_config", sshd_config(host.address))
    write(ssh / "authorized_keys" / "root", authorized_key.strip() + "\n", 0o600)


def run_dirs() -> tuple[HostPath, ...]:
    """The /run directories whose users exist here (a missing package must not stop boot)."""
    return tuple(rd for rd in RUN_DIRS if known(rd))
