"""The lab's verbs: up, down, status, crash, boot, partition, heal (the CLI calls these)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hapair.errors import Refused, UsageError
from hapair.exec.runtime import ServiceStatus
from hapair.lab import (
    access,
    before_stack,
    cleanup,
    hostfs,
    hosts,
    local,
    net,
    procs,
    quota,
    services,
    venv,
)
from hapair.lab import state as lab_state
from hapair.lab.config import (
    BRIDGE,
    FIRST_SERVICE_OWNER,
    LOCK_FILE,
    LabConfig,
    LabHost,
    overlapping_route,
)
from hapair.lab.state import HostState, LabState

Say = Callable[[str], None]
LOCK_WAIT = 10.0
SETTLE_TIMEOUT = 90.0
REQUIRED_TOOLS = (
    "ip",
    "unshare",
    "nsenter",
    "iptables",
    "ssh-keygen",
    "/usr/sbin/sshd",
    "/usr/bin/supervisord",
    "supervisorctl",
    "runuser",
)


def require_root() -> None:
    if os.geteuid() != 0:
        raise Refused("the lab needs root (network namespaces, bridges, mounts): run it as root")


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """One lab command that changes things at a time (bounded wait, then refuse)."""
    Path(LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise Refused(
                        f"another lab command is running (pid {holder}); lock {LOCK_FILE}"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


STACK_TOOLS = (
    "/usr/lib/postgresql/15/bin/postgres",
    "/usr/bin/redis-server",
    "/usr/sbin/nginx",
    "/usr/bin/node",
    "/usr/bin/python3",
)


def check_tools(tools: tuple[str, ...] = REQUIRED_TOOLS) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise Refused(f"missing tools: {', '.join(missing)} (install with scripts/install-deps)")


def check_subnet(cfg: LabConfig) -> None:
    route = overlapping_route(cfg.subnet, local.run(["ip", "route"]).stdout)
    if route:
        raise Refused(
            f"lab subnet {cfg.subnet} overlaps the route `{route}`: "
            "choose another with HAPAIR_LAB_SUBNET"
        )


def up(cfg: LabConfig, say: Say, stack: bool = True,
       cpus_per_host: float | None = None) -> LabState:
    require_root()
    if cpus_per_host is not None:
        quota.check_cpus(cpus_per_host)
    check_tools(REQUIRED_TOOLS + STACK_TOOLS if stack else REQUIRED_TOOLS)
    check_subnet(cfg)
    with lab_lock():
        cleanup.teardown(cfg, say)  # whatever an earlier lab left behind
        venv.ensure_venv(say)
        state = _build(cfg, say)
        if stack:
            before_stack.build(cfg, say)
        if cpus_per_host is not None:  # after the build: the stack's setup runs at full speed
            for h in cfg.hosts:
                _set_quota(state, h.name, cpus_per_host, say)
        return state


def _build(cfg: LabConfig, say: Say) -> LabState:
    cfg.lab_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(cfg.lab_dir, 0o700)
    cfg.marker.write_text("hapair lab directory: `hapair lab down` deletes it\n")
    hostfs.ensure_mountpoints(cfg)
    pub = access.ensure_controller_key(cfg)
    access.ensure_secrets(cfg)
    say("building host trees (sshd host keys, supervisord)")
    host_keys = {h.name: hostfs.build_host_tree(cfg, h, pub) for h in cfg.hosts}
    say(f"network: bridge {BRIDGE} {cfg.controller_address}/{cfg.prefixlen}, one netns per host")
    net.run_all(net.bridge_up_cmds(cfg))
    for h in cfg.hosts:
        net.run_all(net.host_link_cmds(h))
    state = LabState(
        lab_dir=str(cfg.lab_dir),
        subnet=str(cfg.subnet),
        bridge=BRIDGE,
        controller_address=cfg.controller_address,
        service_address=cfg.service_address,
        service_address_owner=FIRST_SERVICE_OWNER,
        hosts={h.name: HostState(h.name, h.address, h.netns) for h in cfg.hosts},
    )
    lab_state.save(cfg.state_file, state)
    for h in cfg.hosts:
        owner = h.name == FIRST_SERVICE_OWNER
        hosts.write_static_address(cfg, h.name, cfg.service_address if owner else None)
    for h in cfg.hosts:
        say(f"booting {h.name} ({h.address})")
        hosts.power_on(cfg, state, h)
        lab_state.save(cfg.state_file, state)
    for h in cfg.hosts:
        hosts.wait_ready(h, state.host(h.name))
    inv = access.render_inventory(access.inventory_data(cfg, host_keys))
    hostfs.write(cfg.inventory_file, inv, 0o600)
    return state


def down(cfg: LabConfig, say: Say) -> None:
    require_root()
    with lab_lock():
        cleanup.teardown(cfg, say)


def crash(cfg: LabConfig, name: str, say: Say) -> None:
    require_root()
    with lab_lock():
        st = lab_state.load(cfg.state_file)
        host, hs = cfg.host(name), st.host(name)
        if not hosts.alive(hs):
            raise Refused(f"{name} is not running: nothing to crash")
        say(f"{name}: power loss (SIGKILL pid {hs.pid1}, link down)")
        hosts.power_off(host, hs)
        lab_state.save(cfg.state_file, st)


def boot(cfg: LabConfig, name: str, say: Say) -> None:
    require_root()
    with lab_lock():
        st = lab_state.load(cfg.state_file)
        host = cfg.host(name)
        say(f"{name}: power on")
        hs = hosts.power_on(cfg, st, host)
        lab_state.save(cfg.state_file, st)
        hosts.wait_ready(host, hs)
        if hs.pidns is not None and quota.reapply(name, hs.pidns):
            say(f"{name}: CPU quota kept ({quota.current(name):g} CPU)")
        _wait_services_settled(cfg, name, say)


def set_quota(cfg: LabConfig, name: str, cpus: float, say: Say) -> dict[str, Any]:
    """Limit every process of HOST to `cpus` CPUs (0: no limit) with a cgroup; `lab down`
    removes it, `lab boot` keeps it."""
    require_root()
    quota.check_cpus(cpus)
    with lab_lock():
        st = lab_state.load(cfg.state_file)
        cfg.host(name)
        return _set_quota(st, name, cpus, say)


def _set_quota(st: LabState, name: str, cpus: float, say: Say) -> dict[str, Any]:
    hs = st.host(name)
    if not hosts.alive(hs) or hs.pidns is None:
        raise Refused(f"{name} is not running: `hapair lab boot {name}` first")
    result = quota.apply(name, hs.pidns, cpus)
    limit = f"{cpus:g} CPU" if cpus else "no CPU limit"
    say(f"{name}: {limit} for its {result['processes']} processes ({result['cgroup']})")
    return result


def _wait_services_settled(cfg: LabConfig, name: str, say: Say) -> None:
    """Give the autostart programs time to come up; report (not fail on) the ones that did
    not: a service that stays down after a reboot is a finding, the boot itself worked."""
    rt = services.runtime(cfg, name)
    pending = ("STARTING", "BACKOFF")
    last: list[ServiceStatus] = []

    def settled() -> bool:
        last[:] = rt.status_all()
        return not any(s.detail.startswith(pending) for s in last)

    procs.wait_until(settled, SETTLE_TIMEOUT, interval=0.5)
    states = ", ".join(f"{s.name}:{s.state.value}" for s in last)
    say(f"{name}: up; services {states}")
    bad = [s.name for s in last if s.state.value not in ("running", "stopped")]
    if bad:
        say(f"WARNING {name}: not running after boot: {', '.join(bad)}")


def partition(cfg: LabConfig, name: str, peer: str | None, say: Say) -> None:
    require_root()
    with lab_lock():
        lab_state.load(cfg.state_file)
        host = cfg.host(name)
        if peer is None:
            say(f"{name}: cut off from everyone (controller included)")
            net.add_partition(host, None)
            return
        other = _peer(cfg, name, peer)
        say(f"{name} <-> {peer}: link cut (both directions)")
        # Rules on both sides: traffic to a service address the peer holds is cut as well,
        # since every packet still carries one end's own address.
        net.add_partition(host, other.address)
        net.add_partition(other, host.address)


def heal(cfg: LabConfig, name: str, peer: str | None, say: Say) -> None:
    require_root()
    with lab_lock():
        lab_state.load(cfg.state_file)
        host = cfg.host(name)
        if peer is not None:
            other = _peer(cfg, name, peer)
            net.remove_partition(host, other.address)
            net.remove_partition(other, host.address)
            say(f"{name} <-> {peer}: link restored")
            return
        net.flush_partitions(host)
        for other in cfg.hosts:
            if other.name != name:
                net.remove_partition(other, host.address)
        say(f"{name}: every partition rule involving it removed")


def _peer(cfg: LabConfig, name: str, peer: str) -> LabHost:
    other = cfg.host(peer)
    if other.name == name:
        raise UsageError(f"--from {peer}: a host cannot be partitioned from itself")
    return other


def set_service_address_owner(cfg: LabConfig, owner: str | None, say: Say) -> None:
    """Move the static service address to `owner` now (None: nobody holds it statically,
    e.g. keepalived takes it over). Recorded so `lab boot` does the same after a crash."""
    require_root()
    with lab_lock():
        st = lab_state.set_service_address_owner(cfg.state_file, owner)
        for h in cfg.hosts:
            hosts.write_static_address(cfg, h.name, st.service_address if h.name == owner
                                       else None)
        for h in cfg.hosts:
            if h.name != owner:
                local.run(net.service_address_argv(h, st.service_address, "del"), check=False)
        if owner is not None and hosts.alive(st.host(owner)):
            local.run(net.service_address_argv(cfg.host(owner), st.service_address, "replace"))
        say(f"service address {st.service_address}: static owner {owner or 'none'}")


def status(cfg: LabConfig) -> dict[str, Any]:
    require_root()
    st = lab_state.load(cfg.state_file)
    names = {h.address: h.name for h in cfg.hosts}
    rows = []
    for h in cfg.hosts:
        hs = st.host(h.name)
        alive = hosts.alive(hs)
        rows.append(
            {
                "name": h.name,
                "address": h.address,
                "alive": alive,
                "pid1": hs.pid1 if alive else None,
                "partitioned_from": [names.get(p, p) for p in net.partitions(h)],
                "cpu_quota": quota.current(h.name),  # CPUs; None: no quota, 0: no limit
                "services": services.host_services(cfg, h.name) if alive else [],
            }
        )
    return {
        "lab_dir": str(cfg.lab_dir),
        "subnet": str(cfg.subnet),
        "controller": cfg.controller_address,
        "front_door": cfg.front_door_url,
        "service_address": {
            "address": st.service_address,
            "static_owner": hosts.static_owner(cfg, st.service_address),
        },
        "inventory": str(cfg.inventory_file),
        "hosts": rows,
    }
