"""Host lifecycle: power on (boot), power loss (crash), and "is it alive / ready"."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from hapair.errors import Refused, StepFailed
from hapair.lab import net, procs
from hapair.lab.config import LabConfig, LabHost
from hapair.lab.hostfs import run_dirs
from hapair.lab.layout import SUPERVISORD_CONF, boot_script, host_argv, nsenter_argv
from hapair.lab.state import HostState, LabState
from hapair.lab.transport import BASE_ENV

PID1_TIMEOUT = 15.0
READY_TIMEOUT = 30.0
DEATH_TIMEOUT = 15.0


def static_addresses(cfg: LabConfig, name: str) -> set[str]:
    """The addresses (without prefix) the host's own config file asks for at boot."""
    path = cfg.static_addresses_file(name)
    if not path.exists():
        return set()
    return {line.split("/")[0].strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def write_static_address(cfg: LabConfig, name: str, address: str | None) -> None:
    """Record (or, with None, clear) the static service address in the host's config file."""
    path = cfg.static_addresses_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# addresses configured at boot (hapair lab)\n"
    path.write_text(body + (f"{address}/32\n" if address else ""))


def static_owner(cfg: LabConfig, address: str) -> str | None:
    for h in cfg.hosts:
        if address in static_addresses(cfg, h.name):
            return h.name
    return None


def alive(hs: HostState) -> bool:
    return procs.is_same_process(hs.pid1, hs.pid1_start)


def power_on(cfg: LabConfig, state: LabState, host: LabHost) -> HostState:
    """Boot a host: fresh addresses, link up, then its init (supervisord) as PID 1."""
    hs = state.host(host.name)
    if alive(hs):
        raise Refused(f"{host.name} is already running (pid {hs.pid1})")
    owns = state.service_address in static_addresses(cfg, host.name)
    net.run_all(net.power_on_cmds(cfg, host, owns))
    script = boot_script(str(cfg.host_root(host.name)), host.name, run_dirs())
    with open(cfg.console_log(host.name), "ab") as console:
        proc = subprocess.Popen(
            host_argv(host.netns, script),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=console,
            env=BASE_ENV,
            # A host's processes inherit PID 1's working directory: the caller's may be a
            # per-host mount (/tmp), where some daemons (HAProxy) then refuse to start.
            cwd="/",
            start_new_session=True,  # not in the CLI's process group: Ctrl-C must not kill it
        )
    pid1 = _wait_pid1(proc, host.name)
    hs.pid1, hs.pid1_start, hs.pidns = pid1, procs.start_time(pid1), procs.ns_id(pid1, "pid")
    return hs


def _wait_pid1(proc: subprocess.Popen[bytes], name: str) -> int:
    """PID 1 is the child of `unshare` once it has exec'ed supervisord."""
    found: list[int] = []

    def ready() -> bool:
        if proc.poll() is not None:
            return True
        for child in procs.children(proc.pid):
            try:
                comm = procs.parse_stat(Path(f"/proc/{child}/stat").read_text())[0]
            except (FileNotFoundError, ProcessLookupError):
                continue
            if comm == "supervisord":
                found.append(child)
                return True
        return False

    procs.wait_until(ready, PID1_TIMEOUT)
    if not found:
        proc.kill()
        raise StepFailed(f"{name}: init did not start (exit {proc.poll()}); see its console.log")
    return found[0]


def wait_ready(host: LabHost, hs: HostState, timeout: float = READY_TIMEOUT) -> None:
    """Ready = supervisord answers and sshd accepts connections on the host's address.

    Checked from inside the host: a partitioned host boots (and is ready) all the same.
    """

    def ready() -> bool:
        if not alive(hs):
            raise StepFailed(f"{host.name}: PID 1 died while booting; see its console.log")
        return _ready_inside(hs, host.address)

    if not procs.wait_until(ready, timeout, interval=0.2):
        raise StepFailed(f"{host.name}: not ready after {timeout:g}s (supervisord or sshd)")


def ready_check_script(address: str) -> str:
    return (
        f"supervisorctl -c {SUPERVISORD_CONF} status sshd | grep -q RUNNING && "
        f"timeout 2 bash -c '</dev/tcp/{address}/22'"
    )


def _ready_inside(hs: HostState, address: str) -> bool:
    assert hs.pid1 is not None
    argv = [*nsenter_argv(hs.pid1), "sh", "-c", ready_check_script(address)]
    res = subprocess.run(argv, capture_output=True, timeout=20, env=BASE_ENV, check=False)
    return res.returncode == 0


def power_off(host: LabHost, hs: HostState) -> None:
    """A power loss: SIGKILL PID 1 (the kernel kills every process of the host at once),
    and both ends of its cable lose carrier. Its disk (per-host tree) and netns stay."""
    if alive(hs):
        assert hs.pid1 is not None
        procs.kill_pids([hs.pid1], signal.SIGKILL)
    net.run_all(net.power_off_cmds(host))
    pidns = hs.pidns
    if pidns and not procs.wait_until(lambda: not procs.pids_in_ns("pid", pidns), DEATH_TIMEOUT):
        raise StepFailed(f"{host.name}: processes still alive {DEATH_TIMEOUT:g}s after power off")
    hs.pid1 = hs.pid1_start = None
    hs.pidns = None
