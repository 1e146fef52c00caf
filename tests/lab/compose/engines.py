"""A Docker engine on each lab host (test-only): hapair's compose projects on real "servers".

Each engine is a program of the host's own supervisord (`/etc/supervisor/conf.d/dockerd.conf`
on the host's disk), like docker.service on a real server: it runs in the host's network,
PID and mount namespaces, a `lab crash` kills it with every other process of the host, and
`lab boot` starts it again (autostart) with the containers whose restart policy asks for it.

Where things live, on the host's own per-host paths (see hapair.lab.layout.BIND_PATHS):

- `/run/docker.sock` (= `/var/run/docker.sock`, the default every `docker`/`docker-compose`
  finds) in the host's private /run: an SSH session or `lab exec` on the host reaches its own
  engine, and only it;
- a second socket on the host's disk, `/var/lib/hapair/lab-docker/docker.sock`, which the
  controller reaches through the host tree (`$LAB/hosts/NAME/root/…`) for `docker -H`;
- data root `/var/lib/hapair/lab-docker/data` (the host's disk), exec root `/run/docker`;
- config `/etc/hapair/lab-docker/daemon.json` (never the machine's /etc/docker).

The engines run with `iptables: false` and `ip-masq: false` (a dockerd that writes iptables
rules in the machine's namespace sets FORWARD to DROP and cuts the lab off), bridge networking
on: docker0 and user-defined networks live inside the host's netns, published ports go through
docker-proxy. Containers reaching OTHER hosts need a MASQUERADE rule, which `set_masquerade`
adds inside the host's own netns only (chain HAPAIR-DOCKER-NAT).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TypeAlias

from hapair.lab import procs
from hapair.lab.config import LabConfig, LabHost
from hapair.lab.layout import SUPERVISORD_CONF
from hapair.lab.state import load as load_state
from hapair.lab.transport import LabHostTransport

ENGINE_DIR = "/var/lib/hapair/lab-docker"  # on the host's disk (per-host /var/lib/hapair)
CONF_DIR = "/etc/hapair/lab-docker"
PROGRAM = "dockerd"
PROGRAM_CONF = "/etc/supervisor/conf.d/dockerd.conf"
HOST_SOCKET = "/run/docker.sock"
EXEC_ROOT = "/run/docker"
CGROUP_PARENT = "hapair-lab-docker"  # /sys/fs/cgroup/<ctl>/hapair-lab-docker/<host>/<id>
NAT_CHAIN = "HAPAIR-DOCKER-NAT"
# What an engine runs besides the containers' own processes.
ENGINE_COMMS = frozenset(
    {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy",
     "runc", "docker-init"}
)
START_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0
SUN_PATH_MAX = 107  # sockaddr_un.sun_path, minus the final NUL

BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static
IMAGE = "hapair-lab/busybox:local"


class HasCfg(Protocol):
    cfg: LabConfig


LabLike: TypeAlias = LabConfig | HasCfg


def _cfg(lab: LabLike) -> LabConfig:
    return lab if isinstance(lab, LabConfig) else lab.cfg


# --- pure builders --------------------------------------------------------------------------


def daemon_config(host: str, iptables: bool = False) -> dict[str, object]:
    """dockerd's daemon.json for a lab host (everything per host, nothing on the machine).
    `iptables`: dockerd writes its own rules — inside the host's netns only, as on a real
    server: published ports are DNAT'ed (a peer's address reaches the container unchanged,
    which pg_hba needs) and containers are masqueraded on their way out."""
    return {
        "hosts": [f"unix://{HOST_SOCKET}", f"unix://{ENGINE_DIR}/docker.sock"],
        "data-root": f"{ENGINE_DIR}/data",
        "exec-root": EXEC_ROOT,
        "pidfile": "/run/docker.pid",
        "iptables": iptables,
        "ip-masq": iptables,
        # Containers' cgroups under a parent of their own per host: `stop_engines` removes
        # exactly those, and two hosts' engines never share one.
        "cgroup-parent": f"/{CGROUP_PARENT}/{host}",
        "storage-driver": "overlay2",
        "log-driver": "json-file",
    }


def cgroup_mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mount point, fstype, options) of the machine's cgroup filesystems, from mountinfo
    (pure). A lab host's /sys is a fresh sysfs (`ip netns exec` remounts it) without them."""
    found = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        opts = [o for o in tail[2].split(",")
                if o not in ("rw", "ro") and not o.startswith("release_agent=")]
        if tail[0] == "cgroup" and all(o.startswith("name=") for o in opts):
            opts.insert(0, "none")  # a named hierarchy without controllers
        found.append((fields[4], tail[0], ",".join(opts)))
    return found


def start_script(mounts: list[tuple[str, str, str]]) -> str:
    """What the dockerd program runs: mount the cgroup hierarchies in the host's mount
    namespace (as systemd does at boot on a real server; again after every `lab boot`), then
    exec dockerd."""
    lines = ["#!/bin/sh", "set -e"]
    if mounts and mounts[0][0] != "/sys/fs/cgroup":  # v1 or hybrid: a tmpfs holds them
        lines.append("mountpoint -q /sys/fs/cgroup || "
                     "mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup /sys/fs/cgroup")
    for point, fstype, opts in mounts:
        q = shlex.quote(point)
        mount = f"mount -t {fstype}" + (f" -o {shlex.quote(opts)}" if opts else "")
        lines.append(f"mkdir -p {q}; mountpoint -q {q} || {mount} {fstype} {q}")
    lines.append(f"exec /usr/sbin/dockerd --config-file {CONF_DIR}/daemon.json")
    return "\n".join(lines) + "\n"


def program_conf() -> str:
    return f"""\
; Docker engine of this lab host (test helper tests/lab/compose/engines.py): like
; docker.service, it comes back at boot and dies with the host.
[program:{PROGRAM}]
command=/bin/sh {CONF_DIR}/start-dockerd.sh
autostart=true
autorestart=true
priority=20
startsecs=2
stopsignal=TERM
stopwaitsecs=60
redirect_stderr=true
stdout_logfile=/var/log/supervisor/dockerd.log
"""


def masquerade_rules(host: LabHost, subnet: str) -> list[list[str]]:
    """nat rules (inside the host's netns): what leaves eth0 from a source outside the lab
    subnet (a container's bridge address) takes the host's address. The host's own traffic,
    from its address or the service address, is never rewritten."""
    return [["-A", NAT_CHAIN, "-o", "eth0", "!", "-s", subnet, "-j", "MASQUERADE"]]


def controller_socket(cfg: LabConfig, host: str) -> Path:
    return cfg.host_root(host) / ENGINE_DIR.lstrip("/") / "docker.sock"


def docker_host(cfg: LabConfig, host: str) -> str:
    path = controller_socket(cfg, host)
    if len(str(path)) > SUN_PATH_MAX:
        raise ValueError(f"socket path too long for a unix socket ({len(str(path))}): {path}")
    return f"unix://{path}"


# --- starting and stopping ------------------------------------------------------------------


def start_engines(lab: LabLike, hosts: Iterable[str], masquerade: bool = True,
                  iptables: bool = False) -> dict[str, str]:
    """A fresh dockerd on each host (leftovers of an earlier run removed first); returns
    {host: DOCKER_HOST for the controller}. With `iptables` dockerd masquerades itself."""
    cfg = _cfg(lab)
    hosts = list(hosts)
    stop_engines(cfg, hosts)
    for name in hosts:
        _install(cfg, name, iptables)
    uris = {}
    for name in hosts:
        uris[name] = docker_host(cfg, name)
        _wait_answers(cfg, name, uris[name])
        set_masquerade(cfg, name, masquerade and not iptables)
    return uris


def _install(cfg: LabConfig, name: str, iptables: bool = False) -> None:
    root = cfg.host_root(name)
    engine = root / ENGINE_DIR.lstrip("/")
    engine.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = root / CONF_DIR.lstrip("/")
    conf.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(conf / "daemon.json", json.dumps(daemon_config(name, iptables), indent=2) + "\n")
    mounts = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    _write(conf / "start-dockerd.sh", start_script(mounts))
    _write(root / PROGRAM_CONF.lstrip("/"), program_conf())
    # `update` adds the new program and starts it (autostart), as after a package install.
    _host(cfg, name).run(["supervisorctl", "-c", SUPERVISORD_CONF, "update", PROGRAM],
                         timeout=60)


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _wait_answers(cfg: LabConfig, name: str, uri: str) -> None:
    if procs.wait_until(lambda: answers(uri), START_TIMEOUT, interval=0.5):
        return
    log = cfg.host_root(name) / "var/log/supervisor/dockerd.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{name}: dockerd does not answer on {uri} after {START_TIMEOUT:g}s\n"
                       f"{tail}")


def answers(uri: str) -> bool:
    try:
        res = subprocess.run(["docker", "-H", uri, "version"], capture_output=True,
                             timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


def stop_engines(lab: LabLike, hosts: Iterable[str]) -> None:
    """Stop each host's engine and remove everything it made: containers, networks, the
    supervisord program, stray processes (by pid), docker's links in the host's netns, the
    NAT chain, data root, config and cgroups. Idempotent; works on a crashed host too."""
    cfg = _cfg(lab)
    for name in hosts:
        if not cfg.lab_dir.exists():
            _remove_cgroups(name)
            continue
        if _alive(cfg, name):
            _stop_running(cfg, name)
        _kill_leftovers(cfg, name)
        _delete_links(cfg.host(name))
        set_masquerade(cfg, name, False)
        _sysctl(cfg.host(name), "net.ipv4.ip_forward", "0")  # dockerd turned it on
        root = cfg.host_root(name)
        (root / PROGRAM_CONF.lstrip("/")).unlink(missing_ok=True)
        shutil.rmtree(root / CONF_DIR.lstrip("/"), ignore_errors=True)
        shutil.rmtree(root / ENGINE_DIR.lstrip("/"), ignore_errors=True)
        _remove_cgroups(name)


def _alive(cfg: LabConfig, name: str) -> bool:
    hs = load_state(cfg.state_file).host(name)
    return procs.is_same_process(hs.pid1, hs.pid1_start)


def _host(cfg: LabConfig, name: str) -> LabHostTransport:
    return LabHostTransport(name, cfg.lab_dir)


def _stop_running(cfg: LabConfig, name: str) -> None:
    t = _host(cfg, name)
    if answers(f"unix://{controller_socket(cfg, name)}"):
        # Through the engine first, so it removes its own veths, netns files and mounts.
        ids = t.run(["docker", "ps", "-aq"], timeout=60).stdout.split()
        if ids:
            t.run(["docker", "rm", "-f", "-v", *ids], timeout=STOP_TIMEOUT, check=False)
        t.run(["docker", "network", "prune", "-f"], timeout=60, check=False)
    ctl = ["supervisorctl", "-c", SUPERVISORD_CONF]
    t.run([*ctl, "stop", PROGRAM], timeout=STOP_TIMEOUT, check=False)
    (cfg.host_root(name) / PROGRAM_CONF.lstrip("/")).unlink(missing_ok=True)
    t.run([*ctl, "update", PROGRAM], timeout=60, check=False)  # removes the program
    _unmount_engine_dirs(cfg, name)
    # The fresh /run of the host would lose them at the next boot; this run is not a boot.
    t.run(["rm", "-rf", EXEC_ROOT, HOST_SOCKET, "/run/docker.pid", "/run/containerd"],
          timeout=60, check=False)


def _unmount_engine_dirs(cfg: LabConfig, name: str) -> None:
    """Mounts dockerd left under its roots (killed mid-way): they live in the host's mount
    namespace, so they are unmounted from inside it."""
    pid1 = load_state(cfg.state_file).host(name).pid1
    try:
        text = Path(f"/proc/{pid1}/mountinfo").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return
    points = [line.split()[4] for line in text.splitlines()]
    ours = [p for p in points if p.startswith((ENGINE_DIR + "/", EXEC_ROOT + "/"))]
    for point in sorted(ours, key=len, reverse=True):
        _host(cfg, name).run(["umount", "-l", point], timeout=30, check=False)


def engine_pids(cfg: LabConfig, name: str) -> list[int]:
    """The engine's processes and its containers' (found by their cgroup)."""
    hs = load_state(cfg.state_file).host(name)
    found = []
    for pid in procs.all_pids():
        in_host = hs.pidns is not None and procs.ns_id(pid, "pid") == hs.pidns
        if _in_container_cgroup(pid, name) or (in_host and _comm(pid) in ENGINE_COMMS):
            found.append(pid)
    return sorted(found)


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _in_container_cgroup(pid: int, name: str) -> bool:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return f"/{CGROUP_PARENT}/{name}/" in text


def _kill_leftovers(cfg: LabConfig, name: str) -> None:
    def gone() -> bool:
        pids = engine_pids(cfg, name)
        procs.kill_pids(pids, signal.SIGKILL)
        return not pids

    if not procs.wait_until(gone, STOP_TIMEOUT, interval=0.5):
        raise RuntimeError(f"{name}: engine processes survive SIGKILL: {engine_pids(cfg, name)}")


def docker_links(ip_link_output: str) -> list[str]:
    """Links docker made in a host's netns, from `ip -o link show` (pure)."""
    names = []
    for line in ip_link_output.splitlines():
        fields = line.split(":", 2)
        if len(fields) < 3:
            continue
        link = fields[1].strip().split("@")[0]
        if link == "docker0" or link.startswith(("br-", "veth")):
            names.append(link)
    return names


def _delete_links(host: LabHost) -> None:
    # `ip -n` works while the host is down: the netns outlives a crash.
    out = subprocess.run(["ip", "-n", host.netns, "-o", "link", "show"], capture_output=True,
                         text=True, timeout=30, check=False).stdout
    for link in docker_links(out):
        subprocess.run(["ip", "-n", host.netns, "link", "delete", link], capture_output=True,
                       timeout=30, check=False)


def _netns_run(
    host: LabHost, argv: list[str], check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", host.netns, *argv], capture_output=True,
                          text=True, timeout=30, check=check)


def _sysctl(host: LabHost, key: str, value: str) -> None:
    _netns_run(host, ["sysctl", "-q", "-w", f"{key}={value}"])  # no-op when the netns is gone


def set_masquerade(lab: LabLike, name: str, on: bool) -> None:
    """Containers of HOST reach the other lab hosts (on) or not (off): a MASQUERADE rule in
    the host's OWN netns (never the machine's), in a chain of its own."""
    cfg = _cfg(lab)
    host = cfg.host(name)
    ipt = ["iptables", "-w", "5", "-t", "nat"]
    if _netns_run(host, [*ipt, "-S", NAT_CHAIN]).returncode == 0:
        while _netns_run(host, [*ipt, "-D", "POSTROUTING", "-j", NAT_CHAIN]).returncode == 0:
            pass
        _netns_run(host, [*ipt, "-F", NAT_CHAIN])
        _netns_run(host, [*ipt, "-X", NAT_CHAIN])
    if not on:
        return
    _netns_run(host, [*ipt, "-N", NAT_CHAIN], check=True)
    for rule in masquerade_rules(host, str(cfg.subnet)):
        _netns_run(host, [*ipt, *rule], check=True)
    _netns_run(host, [*ipt, "-A", "POSTROUTING", "-j", NAT_CHAIN], check=True)


def cgroup_dirs(name: str, root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """Every hierarchy's directory for HOST's containers that exists."""
    return [d / CGROUP_PARENT / name for d in root.iterdir()
            if (d / CGROUP_PARENT / name).is_dir()]


def _remove_cgroups(name: str) -> None:
    for top in cgroup_dirs(name):
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
        with contextlib.suppress(OSError):
            top.parent.rmdir()  # the shared parent, once no host uses it


# --- images ---------------------------------------------------------------------------------


def busybox_tar() -> bytes:
    """A one-binary image with every applet of Debian's busybox-static (httpd, nc, wget…)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for d in ("tmp", "www", "etc"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
    return buf.getvalue()


def import_busybox(uri: str) -> str:
    """Import the busybox image into an engine (never pulled: there is no registry)."""
    subprocess.run(["docker", "-H", uri, "import", "-", IMAGE], input=busybox_tar(),
                   capture_output=True, timeout=120, check=True)
    return IMAGE

