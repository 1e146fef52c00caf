"""The app's env file (KEY=VALUE, values shell-quoted): read and rewrite single keys, keeping
every other line as it was. Pure; the values are secrets, so nothing here logs them."""

from __future__ import annotations

import shlex


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, raw = stripped.removeprefix("export ").partition("=")
        parts = shlex.split(raw) if raw.strip() else [""]
        values[key.strip()] = parts[0] if parts else ""
    return values


def set_env(text: str, updates: dict[str, str]) -> str:
    """Replace the lines of `updates`' keys in place; append keys that were absent."""
    pending = dict(updates)
    out: list[str] = []
    for line in text.splitlines():
        key = line.strip().removeprefix("export ").partition("=")[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            out.append(f"{key}={shlex.quote(pending.pop(key))}")
        else:
            out.append(line)
    out += [f"{k}={shlex.quote(v)}" for k, v in pending.items()]
    return "\n".join(out) + "\n"


def redis_url_via(url: str, host: str, port: int) -> str:
    """redis://:PASSWORD@HOST:PORT/DB with another host and port (password kept)."""
    scheme, _, rest = url.partition("://")
    auth, at, hostpart = rest.rpartition("@")
    _, slash, db = hostpart.partition("/")
    return f"{scheme}://{auth}{at}{host}:{port}{slash}{db}"
