"""Per-host CPU quotas: every process of a lab host in a cgroup of its own with a CFS quota.

The hosts share the machine's cores; without a quota a "two nodes against one" measure means
nothing. cgroup v1 (a `cpu` hierarchy, cpu.cfs_quota_us / cpu.cfs_period_us) and v2 (cpu.max)
are both handled. The host's cgroup is `<cpu hierarchy>/hapair-lab/<host>`; a process forked
inside it stays inside, so placing the host's PID 1 and every process of its PID namespace
once covers what supervisord and sshd start later. Processes entered from outside
(`lab exec`, nsenter) start in the caller's cgroup: `apply` sweeps them in when run again.

The parsers and value builders are pure; `apply`, `remove` and friends do the I/O.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from hapair.errors import Refused, StepFailed, UsageError
from hapair.lab import procs

GROUP = "hapair-lab"
PERIOD_US = 100_000  # the kernel's default CFS period
MIN_CPUS = 0.01  # the kernel refuses a quota below 1 ms per period
SWEEP_ROUNDS = 20  # a host forking while we move it needs another round; bounded


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    mount: Path  # where the cpu controller's hierarchy is mounted

    @property
    def base(self) -> Path:
        return self.mount / GROUP

    def host_dir(self, host: str) -> Path:
        return self.base / host


def find_hierarchy(mounts: str) -> Hierarchy | None:
    """The cpu controller's hierarchy from /proc/self/mounts text: a v1 `cgroup` mount with the
    `cpu` option wins (hybrid machines also mount an empty v2 tree), else a `cgroup2` mount."""
    v2: Hierarchy | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup" and "cpu" in options:
            return Hierarchy(1, Path(mount))
        if fstype == "cgroup2" and v2 is None:
            v2 = Hierarchy(2, Path(mount))
    return v2


def check_cpus(cpus: float) -> float:
    """0 means no limit; otherwise at least MIN_CPUS."""
    if cpus != 0 and cpus < MIN_CPUS:
        raise UsageError(f"--cpus {cpus:g}: use 0 (no limit) or at least {MIN_CPUS:g}")
    return cpus


def quota_us(cpus: float, period_us: int = PERIOD_US) -> int | None:
    """CPU time per period in µs; None for no limit (cpus = 0)."""
    return None if cpus == 0 else max(1000, round(cpus * period_us))


def quota_files(version: int, cpus: float, period_us: int = PERIOD_US) -> dict[str, str]:
    """File → value to write in the host's cgroup, in order (v1: period before quota)."""
    q = quota_us(cpus, period_us)
    if version == 1:
        return {"cpu.cfs_period_us": str(period_us), "cpu.cfs_quota_us": str(-1 if q is None
                                                                              else q)}
    return {"cpu.max": f"{'max' if q is None else q} {period_us}"}


def parse_quota(version: int, files: dict[str, str]) -> float:
    """CPUs the host may use from the values read back (0: no limit)."""
    if version == 1:
        q, period = int(files["cpu.cfs_quota_us"]), int(files["cpu.cfs_period_us"])
    else:
        first, second = files["cpu.max"].split()
        q, period = (-1 if first == "max" else int(first)), int(second)
    return 0.0 if q < 0 else q / period


def cgroup_of(proc_cgroup: str, version: int) -> str | None:
    """The process's cpu cgroup path from /proc/PID/cgroup text (v1: the line whose
    controllers include cpu; v2: the `0::` line)."""
    for line in proc_cgroup.splitlines():
        ident, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if version == 1 and "cpu" in controllers.split(","):
            return path
        if version == 2 and ident == "0" and controllers == "":
            return path
    return None


def relative(host: str) -> str:
    """The host's cgroup as /proc/PID/cgroup names it (relative to the hierarchy's root)."""
    return f"/{GROUP}/{host}"


# --- I/O -------------------------------------------------------------------------------------


def hierarchy() -> Hierarchy:
    found = find_hierarchy(Path("/proc/self/mounts").read_text())
    if found is None:
        raise Refused("no cgroup hierarchy with the cpu controller is mounted: CPU quotas "
                      "are not available on this machine")
    return found


def _enable_cpu_v2(h: Hierarchy) -> None:
    # v2: a child gets cpu.max only when its parent delegates the controller.
    for parent in (h.mount, h.base):
        control = parent / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            try:
                control.write_text("+cpu")
            except OSError as exc:
                raise Refused(f"cannot enable the cpu controller in {parent}: "
                              f"{exc.strerror}") from None


def _ensure_dirs(h: Hierarchy, host: str) -> Path:
    h.base.mkdir(exist_ok=True)
    if h.version == 2:
        _enable_cpu_v2(h)
    d = h.host_dir(host)
    d.mkdir(exist_ok=True)
    return d


def _outside(pids: list[int], h: Hierarchy, host: str) -> list[int]:
    want = relative(host)
    out = []
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
        zombie = stat[stat.rindex(")") + 2:].startswith("Z")  # uses no CPU; cannot move
        if cgroup_of(text, h.version) != want and not zombie:
            out.append(pid)
    return out


def place(h: Hierarchy, host: str, pidns: str) -> int:
    """Move every process of the PID namespace into the host's cgroup; returns how many
    processes it holds. Rounds until none is left outside (forks in between), bounded."""
    procs_file = h.host_dir(host) / "cgroup.procs"
    for _ in range(SWEEP_ROUNDS):
        members = procs.pids_in_ns("pid", pidns)
        left = _outside(members, h, host)
        if not left:
            return len(members)
        for pid in left:
            try:
                procs_file.write_text(str(pid))
            except OSError as exc:
                if exc.errno != errno.ESRCH:  # ESRCH: it exited meanwhile
                    raise StepFailed(f"{host}: cannot move pid {pid} into "
                                     f"{h.host_dir(host)}: {exc.strerror}") from None
    raise StepFailed(f"{host}: processes keep escaping {h.host_dir(host)} after "
                     f"{SWEEP_ROUNDS} rounds")


def apply(host: str, pidns: str, cpus: float) -> dict[str, object]:
    """Set the host's quota and sweep all its processes into the cgroup."""
    h = hierarchy()
    d = _ensure_dirs(h, host)
    for name, value in quota_files(h.version, cpus).items():
        (d / name).write_text(value)
    count = place(h, host, pidns)
    return {"host": host, "cpus": read(h, host), "cgroup": str(d), "processes": count}


def reapply(host: str, pidns: str) -> bool:
    """After a boot: a host that had a quota gets its new processes placed again."""
    found = find_hierarchy(Path("/proc/self/mounts").read_text())
    if found is None or not found.host_dir(host).is_dir():
        return False
    place(found, host, pidns)
    return True


def read(h: Hierarchy, host: str) -> float | None:
    """The host's quota in CPUs (0: no limit), or None when it has no cgroup."""
    d = h.host_dir(host)
    names = quota_files(h.version, 0)
    try:
        return parse_quota(h.version, {n: (d / n).read_text().strip() for n in names})
    except FileNotFoundError:
        return None


def current(host: str) -> float | None:
    found = find_hierarchy(Path("/proc/self/mounts").read_text())
    return None if found is None else read(found, host)


def leftover() -> list[str]:
    """The lab's cgroup directories still present (for `lab down`'s final check)."""
    found = find_hierarchy(Path("/proc/self/mounts").read_text())
    if found is None or not found.base.exists():
        return []
    return [str(found.base), *sorted(str(p) for p in found.base.iterdir() if p.is_dir())]


def remove_all(timeout: float = 10.0) -> list[str]:
    """rmdir every host cgroup, then the lab's (idempotent). A cgroup is busy until its last
    killed process is reaped, hence the bounded retry. Returns the directories removed."""
    found = find_hierarchy(Path("/proc/self/mounts").read_text())
    if found is None or not found.base.exists():
        return []
    removed: list[str] = []

    def gone() -> bool:
        for d in [*sorted(p for p in found.base.iterdir() if p.is_dir()), found.base]:
            with contextlib.suppress(FileNotFoundError):
                try:
                    os.rmdir(d)
                    removed.append(str(d))
                except OSError:
                    return False  # still busy (EBUSY): processes not reaped yet
        return not found.base.exists()

    procs.wait_until(gone, timeout, interval=0.2)
    return removed
