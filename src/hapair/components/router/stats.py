"""HAProxy runtime API over the stats socket: command builders and the `show stat` parser.

Used by the local router and the HAProxy HTTP load balancer. The socket is a unix socket
(mode 600); `stats_command_argv` talks to it with the host's python3, so no socat is needed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from hapair.components.common import Check, require_abs_path, require_name
from hapair.errors import StepFailed

# A tiny bounded client: connect, send one command, print the answer (no secret involved).
_SOCKET_CLIENT = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX);s.settimeout(5);s.connect(sys.argv[1])\n"
    "s.sendall(sys.argv[2].encode()+b'\\n');b=b''\n"
    "while True:\n"
    "    d=s.recv(65536)\n"
    "    if not d:break\n"
    "    b+=d\n"
    "sys.stdout.write(b.decode())\n"
)


def stats_command_argv(socket_path: str, command: str, python: str = "python3") -> list[str]:
    require_abs_path(socket_path, "stats socket")
    if "\n" in command or ";" in command:
        raise StepFailed("one HAProxy runtime command at a time")
    return [python, "-c", _SOCKET_CLIENT, socket_path, command]


def show_stat_argv(socket_path: str, python: str = "python3") -> list[str]:
    return stats_command_argv(socket_path, "show stat", python)


def stats_commands_argv(socket_path: str, commands: Sequence[str],
                        python: str = "python3") -> list[str]:
    """Several runtime commands in one connection: HAProxy's CLI takes `a; b; c` on one line
    and answers each in turn, each answer ending with an empty line (management guide §9.3)."""
    if not commands:
        raise StepFailed("no HAProxy runtime command to send")
    for command in commands:
        stats_command_argv(socket_path, command, python)  # one command each, validated
    return [python, "-c", _SOCKET_CLIENT, socket_path, "; ".join(commands)]


def set_server_health(proxy: str, server: str, health: str) -> str:
    """`set server P/S health up|down`: force the health-check verdict now instead of waiting
    for `rise`/`fall` check rounds; the next checks still run and can overturn it (HAProxy
    2.6 management guide, "set server ... health": "to immediately switch a server's state
    regardless of some slow health checks"). Marking a server down this way also applies its
    `on-marked-down shutdown-sessions` (checked on HAProxy 2.6.12: the session was cut within
    0.1 s)."""
    require_name(proxy, "proxy")
    require_name(server, "server")
    if health not in ("up", "down"):
        raise StepFailed(f"server health {health!r} is not up|down")
    return f"set server {proxy}/{server} health {health}"


def route_commands(proxy_from: str, server_from: str, proxy_to: str,
                   server_to: str) -> list[str]:
    """Move a router's traffic from one server to another: the old one down FIRST (its
    sessions are cut, and with `balance first` two servers up would pick by order), then the
    new one up, then `show stat` to read the result in the same round trip."""
    return [set_server_health(proxy_from, server_from, "down"),
            set_server_health(proxy_to, server_to, "up"), "show stat"]


def parse_runtime_reply(text: str) -> tuple[list[str], tuple[ServerStat, ...]]:
    """The answer to `route_commands`: the `set` commands answer nothing on success, an error
    message otherwise; then the `show stat` CSV. Returns (error messages, server stats)."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("# pxname")), None)
    before = lines if header is None else lines[:header]
    errors = [line.strip() for line in before if line.strip()]
    stats = () if header is None else parse_show_stat("\n".join(lines[header:]))
    return errors, stats


def set_server_state(proxy: str, server: str, state: str) -> str:
    """`set server P/S state ready|drain|maint` (drain: no new connections, keep existing)."""
    require_name(proxy, "proxy")
    require_name(server, "server")
    if state not in ("ready", "drain", "maint"):
        raise StepFailed(f"server state {state!r} is not ready|drain|maint")
    return f"set server {proxy}/{server} state {state}"


@dataclass(frozen=True)
class ServerStat:
    proxy: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, "UP 1/2" (going down), "DOWN 1/2" (going up), no check
    check_status: str  # L7OK, L7STS, L4CON, L7TOUT, L7RSP, …
    last_check: str  # the last check's detail (e.g. "TCPCHK did not match content …")
    current_sessions: int

    @property
    def up(self) -> bool:
        # "UP 1/2" is still up (one failed check of `fall`); DRAIN serves existing sessions
        return self.status.split(" ")[0] == "UP"


def parse_show_stat(text: str) -> tuple[ServerStat, ...]:
    """`show stat` CSV -> one entry per SERVER (FRONTEND/BACKEND summary rows skipped)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise StepFailed("show stat: missing the '# pxname,…' header")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    out = []
    for row in reader:
        server = row.get("svname") or ""
        if not server or server in ("FRONTEND", "BACKEND"):
            continue
        out.append(ServerStat(
            proxy=row.get("pxname", ""),
            server=server,
            status=row.get("status", ""),
            check_status=(row.get("check_status") or "").lstrip("* "),
            last_check=row.get("last_chk") or "",
            current_sessions=int(row.get("scur") or 0),
        ))
    return tuple(out)


def servers_up(stats: Sequence[ServerStat], proxy: str) -> list[str]:
    return [s.server for s in stats if s.proxy == proxy and s.up]


def check_single_up(stats: Sequence[ServerStat], proxies: str | Sequence[str],
                    what: str = "") -> Check:
    """For the router: exactly one server up across `proxies` (the primary / the master)."""
    names = (proxies,) if isinstance(proxies, str) else tuple(proxies)
    label = what or names[0]
    servers = [s for s in stats if s.proxy in names]
    if not servers:
        return Check.failed(f"router has no proxy {', '.join(names)}")
    up = [s.server for s in servers if s.up]
    if len(up) == 1:
        return Check.passed(f"router {label} -> {up[0]}")
    detail = "; ".join(f"{s.server} {s.status} ({s.check_status} {s.last_check})".strip()
                       for s in servers)
    if not up:
        return Check.failed(f"router {label}: no backend up: {detail}")
    return Check.failed(f"router {label}: {len(up)} backends up at once: {detail}")


def check_all_up(stats: Sequence[ServerStat], proxy: str) -> Check:
    """For the HTTP load balancer: every server answers its health check."""
    servers = [s for s in stats if s.proxy == proxy]
    if not servers:
        return Check.failed(f"haproxy has no proxy {proxy!r}")
    down = [f"{s.server} {s.status} ({s.check_status} {s.last_check})".strip()
            for s in servers if not s.up]
    if down:
        return Check.failed(f"{proxy}: down: {'; '.join(down)}")
    return Check.passed(f"{proxy}: {len(servers)} servers up")
