"""Process facts from /proc and bounded waits (the lab's only view of its own processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def parse_stat(text: str) -> tuple[str, int]:
    """(comm, starttime) from the text of /proc/PID/stat (comm may contain spaces and ')')."""
    lpar, rpar = text.index("("), text.rindex(")")
    rest = text[rpar + 2 :].split()
    # Fields after comm start at field 3 (state); starttime is field 22.
    return text[lpar + 1 : rpar], int(rest[22 - 3])


def start_time(pid: int) -> int | None:
    """Start time of pid in clock ticks since boot, or None if it does not exist."""
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def is_same_process(pid: int | None, started: int | None) -> bool:
    """True if pid still names the process that started at `started` (guards pid reuse)."""
    if not pid or started is None:
        return False
    state = _state(pid)
    return state not in (None, "Z") and start_time(pid) == started


def _state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def ns_id(pid: int, kind: str) -> str | None:
    """e.g. 'pid:[4026532301]' for kind 'pid'; None when the process is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def pids_in_ns(kind: str, ident: str) -> list[int]:
    return [p for p in all_pids() if ns_id(p, kind) == ident]


def netns_pids(netns: str) -> list[int]:
    """`ip netns pids NAME`: every process whose network namespace is NAME."""
    res = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30, check=False
    )
    return [int(x) for x in res.stdout.split() if x.isdigit()]


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll predicate until true or timeout (bounded); returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def processes_touching(path: Path) -> list[tuple[int, str]]:
    """Processes whose cwd or root lies under path (for `lab down`'s final check)."""
    prefix = str(path).rstrip("/") + "/"
    found: list[tuple[int, str]] = []
    for pid in all_pids():
        for link in ("cwd", "root"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if (target + "/").startswith(prefix):
                found.append((pid, f"{link}={target}"))
    return found


def _mount_fields(line: str) -> tuple[str, str]:
    """(root, mount point) of a /proc/PID/mountinfo line (octal escapes decoded)."""
    f = line.split()
    return _unescape(f[3]), _unescape(f[4])


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def fs_path(path: Path, mountinfo: str) -> str:
    """Where `path` lies inside its filesystem, as mountinfo's "root" field would show it."""
    best_mp, best_root = "/", "/"
    for line in mountinfo.splitlines():
        root, mp = _mount_fields(line)
        if (str(path) + "/").startswith(mp.rstrip("/") + "/") and len(mp) >= len(best_mp):
            best_mp, best_root = mp, root
    rel = os.path.relpath(path, best_mp)
    return os.path.normpath(os.path.join(best_root, rel)) if rel != "." else best_root


def lab_mount_pids(lab_dir: Path) -> list[int]:
    """Processes living in a mount namespace built from the lab's trees (a lab host's), found
    by their mounts' roots. Our own mount namespace is never included."""
    own = ns_id(os.getpid(), "mnt")
    prefix = fs_path(lab_dir, Path("/proc/self/mountinfo").read_text()).rstrip("/") + "/"
    found = []
    for pid in all_pids():
        if ns_id(pid, "mnt") in (own, None):
            continue
        try:
            text = Path(f"/proc/{pid}/mountinfo").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if any((_mount_fields(ln)[0] + "/").startswith(prefix) for ln in text.splitlines()):
            found.append(pid)
    return found
