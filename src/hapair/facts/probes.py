"""Read-only probes: each is an argv to run on a host plus a pure parser of its output.

pyinfra's shape: a fact is a command and a parser; the parser is tested against recorded
outputs, the command against its exact argv. Nothing here changes a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- PostgreSQL major version of the installed server binaries --------------------------


def pg_version_argv(bin_dir: str) -> list[str]:
    return [f"{bin_dir.rstrip('/')}/postgres", "--version"]


_PG_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def parse_pg_major(output: str) -> int | None:
    """`postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15."""
    match = _PG_VERSION.search(output)
    return int(match.group(1)) if match else None


# --- Is there a PostgreSQL data directory at a path? -------------------------------------


def pg_data_dir_argv(data_dir: str) -> list[str]:
    # PG_VERSION exists in every initialised data directory; print it or nothing.
    return ["sh", "-c", 'cat "$1/PG_VERSION" 2>/dev/null || true', "sh", data_dir]


def parse_pg_data_dir(output: str) -> int | None:
    """The major version stored in the data directory, or None when there is none."""
    text = output.strip()
    return int(text) if text.isdigit() else None


# --- Free disk space under a path ---------------------------------------------------------


def disk_free_argv(path: str) -> list[str]:
    # Walk up to the nearest existing parent so the probe works before the path exists.
    script = 'p="$1"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -PB1 "$p"'
    return ["sh", "-c", script, "sh", path]


def parse_df_available(output: str) -> int | None:
    """Bytes available from `df -PB1` output (second line, fourth column)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    return int(fields[3]) if len(fields) >= 4 and fields[3].isdigit() else None


def dir_size_argv(path: str) -> list[str]:
    return ["du", "-sB1", path]


def parse_du_bytes(output: str) -> int | None:
    first = output.strip().split()
    return int(first[0]) if first and first[0].isdigit() else None


# --- Clock ---------------------------------------------------------------------------------


def clock_argv() -> list[str]:
    return ["date", "+%s.%N"]


def parse_clock(output: str) -> float | None:
    try:
        return float(output.strip())
    except ValueError:
        return None


# --- Listening TCP ports -------------------------------------------------------------------


def listening_ports_argv() -> list[str]:
    return ["ss", "-Hltn"]


@dataclass(frozen=True)
class Listener:
    address: str
    port: int


def parse_listeners(output: str) -> tuple[Listener, ...]:
    """`ss -Hltn` lines → listeners. Handles IPv4, [IPv6] and `*` forms."""
    found: list[Listener] = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]")
        if "%" in address:  # link-local scope: 'fe80::1%eth0'
            address = address.split("%", 1)[0]
        found.append(Listener(address=address or "*", port=int(port)))
    return tuple(found)


def port_taken(listeners: tuple[Listener, ...], address: str, port: int) -> Listener | None:
    """The listener that would collide with binding (address, port), if any."""
    wildcard = {"*", "0.0.0.0", "::"}
    for listener in listeners:
        if listener.port != port:
            continue
        if listener.address in wildcard or address in wildcard or listener.address == address:
            return listener
    return None
