"""Compose's short and long syntaxes → one form (pure). Used for files read offline, for
`docker-compose` v1's YAML `config` output, and for `docker compose config --format json`
(already long; every function here accepts both).

Each function raises ValueError with a one-line problem; callers add the service and key.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from typing import Any

from hapair.compose.model import Mount, NetworkAttachment, PortBinding

_PROTOCOLS = ("tcp", "udp", "sctp")


def as_str(value: Any) -> str:
    """A scalar as compose reads it (bools as YAML 1.1 writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- ports -----------------------------------------------------------------------------------


def parse_ports(entries: Any) -> tuple[PortBinding, ...]:
    out: list[PortBinding] = []
    for entry in _list(entries, "ports"):
        out.extend(parse_port(entry))
    return tuple(out)


def parse_port(entry: Any) -> list[PortBinding]:
    """One `ports:` entry; a range ("8000-8001:8000-8001") becomes one binding per port."""
    if isinstance(entry, Mapping):
        target = _int(entry.get("target"), "port target")
        published = entry.get("published")
        return [
            PortBinding(
                target=target,
                published="" if published is None else as_str(published),
                host_ip=as_str(entry.get("host_ip") or ""),
                protocol=as_str(entry.get("protocol") or "tcp"),
            )
        ]
    host_ip, published, target, protocol = split_port(as_str(entry))
    targets = _port_range(target)
    pubs = _port_range(published) if published else [""] * len(targets)
    if len(pubs) != len(targets):
        raise ValueError(f"port {entry!r}: host and container ranges differ in length")
    return [
        PortBinding(target=int(t), published=str(p), host_ip=host_ip, protocol=protocol)
        for p, t in zip(pubs, targets, strict=True)
    ]


def split_port(text: str) -> tuple[str, str, str, str]:
    """"[IP:][HOST:]CONTAINER[/PROTO]" → (ip, host port, container port, protocol)."""
    body, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"port {text!r}: unknown protocol {protocol!r}")
    host_ip = ""
    if body.startswith("["):
        end = body.find("]")
        if end < 0 or body[end + 1 : end + 2] != ":":
            raise ValueError(f"port {text!r}: bad IPv6 address")
        host_ip, body = body[1:end], body[end + 2 :]
        parts = [*body.split(":")]
        if len(parts) == 1:
            parts = ["", parts[0]]
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
        elif len(parts) == 1:
            parts = ["", parts[0]]
    if len(parts) != 2 or not parts[1]:
        raise ValueError(f"port {text!r}: expected [IP:][HOST:]CONTAINER[/PROTOCOL]")
    return host_ip, parts[0], parts[1], protocol


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    lo = _int(first, "port")
    hi = _int(last, "port") if last else lo
    if hi < lo:
        raise ValueError(f"port range {text!r} is reversed")
    return list(range(lo, hi + 1))


# --- volumes ---------------------------------------------------------------------------------


def parse_mounts(entries: Any, base_dir: str | None = None) -> tuple[Mount, ...]:
    return tuple(parse_mount(e, base_dir) for e in _list(entries, "volumes"))


def parse_mount(entry: Any, base_dir: str | None = None) -> Mount:
    if isinstance(entry, Mapping):
        kind = as_str(entry.get("type") or "volume")
        source = as_str(entry.get("source") or "")
        if kind == "bind":
            source = _host_path(source, base_dir)
        return Mount(kind, as_str(entry["target"]), source, bool(entry.get("read_only")))
    parts = as_str(entry).split(":")
    if len(parts) == 1:
        return Mount("volume", parts[0])  # anonymous volume
    if len(parts) > 3:
        raise ValueError(f"volume {entry!r}: expected SOURCE:TARGET[:MODE]")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    read_only = "ro" in modes
    if source.startswith(("/", ".", "~")):
        return Mount("bind", target, _host_path(source, base_dir), read_only)
    return Mount("volume", target, source, read_only)


def _host_path(source: str, base_dir: str | None) -> str:
    if base_dir and source.startswith("."):
        return posixpath.normpath(posixpath.join(base_dir, source))
    return source


# --- environment, networks, the rest -----------------------------------------------------------


def parse_environment(value: Any) -> dict[str, str | None]:
    """List ("K=V", "K") or mapping → {K: V}; a bare K (value from the shell) is None."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): None if v is None else as_str(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in _list(value, "environment"):
        key, sep, val = as_str(item).partition("=")
        out[key] = val if sep else None
    return out


def parse_networks(value: Any) -> tuple[NetworkAttachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        return tuple(NetworkAttachment(as_str(n)) for n in _list(value, "networks"))
    out = []
    for name, opts in value.items():
        opts = opts or {}
        ip = opts.get("ipv4_address")
        out.append(
            NetworkAttachment(
                str(name),
                as_str(ip) if ip else None,
                tuple(as_str(a) for a in opts.get("aliases") or ()),
            )
        )
    return tuple(out)


def parse_command(value: Any) -> tuple[str, ...] | None:
    """A string is split the way compose splits it (shell words, no shell)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ValueError(f"command {value!r}: {exc}") from None
    return tuple(as_str(v) for v in _list(value, "command"))


def parse_healthcheck(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, Mapping) or value.get("disable"):
        return None
    test = value.get("test")
    if test is None:
        return None
    if isinstance(test, str):
        return ("CMD-SHELL", test)
    words = tuple(as_str(t) for t in _list(test, "healthcheck.test"))
    return None if words[:1] == ("NONE",) else words


def parse_env_files(value: Any) -> tuple[str, ...]:
    """`env_file:` as a string, a list of strings, or a list of {path, required}."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str | Mapping) else _list(value, "env_file")
    return tuple(as_str(i["path"] if isinstance(i, Mapping) else i) for i in items)


def parse_depends_on(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(str(k) for k in value)
    return tuple(as_str(v) for v in _list(value, "depends_on"))


def parse_str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(as_str(v) for v in _list(value, what))


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"{what}: expected a list, got {type(value).__name__}")


def _int(value: Any, what: str) -> int:
    try:
        return int(as_str(value))
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
