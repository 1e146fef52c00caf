"""What a lab host is made of on disk and how it boots (pure builders, tested as data).

A host sees the machine's filesystem except for the paths below, which are bind-mounted from
its own tree ($LAB/hosts/NAME/root/<path>): the same path holds different data on each host,
as on real servers. /run and /dev/shm are fresh tmpfs mounts at every boot (a reboot empties
them on a real host too), with the runtime directories that systemd-tmpfiles would create.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class HostPath:
    path: str
    owner: str = "root"
    group: str = "root"
    mode: int = 0o755


# Per-host views: bind-mounted over the machine's path of the same name.
BIND_PATHS: tuple[HostPath, ...] = (
    HostPath("/etc/ssh"),
    HostPath("/etc/supervisor"),
    HostPath("/etc/hapair"),
    HostPath("/etc/redis", "redis", "redis", 0o2770),
    HostPath("/etc/nginx"),
    HostPath("/etc/haproxy"),
    HostPath("/etc/pgbouncer"),
    HostPath("/etc/keepalived"),
    HostPath("/etc/patroni"),
    HostPath("/etc/etcd"),
    # net.* sysctls are per network namespace, and the namespace outlives a crash, so they
    # persist like /etc/sysctl.d does on a real server; the bind keeps files per host.
    HostPath("/etc/sysctl.d"),
    HostPath("/var/lib/postgresql", "postgres", "postgres", 0o755),
    HostPath("/var/lib/redis", "redis", "redis", 0o750),
    HostPath("/var/lib/etcd", "etcd", "etcd", 0o700),
    HostPath("/var/lib/hapair"),
    HostPath("/var/lib/nginx"),
    HostPath("/var/log"),
    HostPath("/tmp", mode=0o1777),
    HostPath("/opt/cms"),
    # hapair's generated compose bundles for the lab's compose project `cms` (the compose
    # end-to-end test): /opt/hapair/cms/<host>/, per host like a real server's disk.
    HostPath("/opt/hapair/cms"),
)

# Directories inside the per-host trees (persist across crash/boot, like a disk).
HOST_SUBDIRS: tuple[HostPath, ...] = (
    HostPath("/etc/ssh/authorized_keys"),
    HostPath("/etc/supervisor/conf.d"),
    HostPath("/var/log/supervisor"),
    HostPath("/var/log/nginx", "root", "adm", 0o755),
    HostPath("/var/log/postgresql", "root", "postgres", 0o1775),
    HostPath("/var/log/redis", "redis", "adm", 0o2750),
)

# Created in the fresh /run at every boot (what systemd-tmpfiles / RuntimeDirectory= do).
RUN_DIRS: tuple[HostPath, ...] = (
    HostPath("/run/sshd"),
    HostPath("/run/lock", mode=0o1777),
    HostPath("/run/postgresql", "postgres", "postgres", 0o2775),
    HostPath("/run/redis", "redis", "redis", 0o2775),
    HostPath("/run/haproxy", "root", "haproxy", 0o2775),
    HostPath("/run/pgbouncer", "postgres", "postgres", 0o2775),
    HostPath("/run/hapair"),
)

SUPERVISORD_CONF = "/etc/supervisor/supervisord.conf"
SUPERVISOR_SOCKET = "/run/supervisor.sock"
SUPERVISORD = "/usr/bin/supervisord"


def boot_script(host_root: str, hostname: str, run_dirs: tuple[HostPath, ...] = RUN_DIRS) -> str:
    """The shell script that turns a fresh mount+PID namespace into the host and execs init.

    `exec` makes supervisord the PID 1 of the namespace: it reaps orphans, and killing it
    takes every process of the host down at once (a power loss).
    """
    lines = ["set -e"]
    for hp in BIND_PATHS:
        src = host_root.rstrip("/") + hp.path
        lines.append(f"mount --bind {shlex.quote(src)} {shlex.quote(hp.path)}")
    lines.append("mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs /run")
    lines.append("mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm")
    for rd in run_dirs:
        lines.append(
            f"install -d -o {rd.owner} -g {rd.group} -m {rd.mode:04o} {shlex.quote(rd.path)}"
        )
    lines.append(f"hostname {shlex.quote(hostname)}")
    lines.append(f"exec {SUPERVISORD} -n -c {SUPERVISORD_CONF}")
    return "\n".join(lines) + "\n"


def host_argv(netns: str, script: str) -> list[str]:
    """Start a host: its network namespace, then new PID/mount/UTS/IPC namespaces.

    --kill-child: if the `unshare` parent is ever killed, the host dies with it instead of
    lingering as an orphan nobody tracks.
    """
    return [
        "ip",
        "netns",
        "exec",
        netns,
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--uts",
        "--ipc",
        "--propagation",
        "private",
        "--mount-proc",
        "sh",
        "-c",
        script,
    ]


def nsenter_argv(pid1: int) -> list[str]:
    """Enter every namespace of a running host (works while the host is partitioned)."""
    return [
        "nsenter",
        f"--target={pid1}",
        "--net",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--",
    ]


def sshd_config(address: str) -> str:
    return "\n".join(
        [
            "# hapair lab host sshd: key-only; host key, authorized keys in this host's /etc/ssh",
            "Port 22",
            f"ListenAddress {address}",
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "PidFile /run/sshd.pid",
            "AuthorizedKeysFile /etc/ssh/authorized_keys/%u",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "X11Forwarding no",
            "PrintMotd no",
            "AcceptEnv LANG LC_*",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )


def supervisord_conf() -> str:
    return f"""\
; hapair lab host init: supervisord is PID 1 of the host and runs every service.
[unix_http_server]
file={SUPERVISOR_SOCKET}
chmod=0700

[supervisord]
nodaemon=true
user=root
logfile=/var/log/supervisor/supervisord.log
pidfile=/run/supervisord.pid
childlogdir=/var/log/supervisor

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{SUPERVISOR_SOCKET}

[include]
files = /etc/supervisor/conf.d/*.conf
"""


def sshd_program() -> str:
    # Part of the host's "operating system", not of the stack: started first.
    return """\
[program:sshd]
command=/usr/sbin/sshd -D -e
autostart=true
autorestart=true
priority=10
startsecs=1
stopsignal=TERM
redirect_stderr=true
stdout_logfile=/var/log/supervisor/sshd.log
"""
