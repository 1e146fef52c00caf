"""`hapair init`: discover a single-node Docker Compose stack and write an inventory draft.

With --host it reads the running stack over SSH (read-only commands only; the host key must
be pinned with --host-key or --known-hosts — never trusted on first use). Without --host it
reads the compose and env files alone. Nothing on the host changes either way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hapair.cli.options import OutputFormat, output_option
from hapair.cli.output import emit, progress
from hapair.compose.collect import discover_offline, discover_remote
from hapair.compose.draft import SshInfo, render_draft
from hapair.compose.offline import default_compose_files
from hapair.errors import UsageError
from hapair.exec.ssh import SSHTransport
from hapair.exec.transport import Transport

_KEY_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                   "ecdsa-sha2-nistp521", "ssh-rsa")


def open_transport(name: str, address: str, port: int, user: str, key: str,
                   host_key: str) -> Transport:
    """The SSH transport discovery uses (a seam: tests substitute a recording one)."""
    return SSHTransport(name, address, port=port, user=user, key_path=key, host_key=host_key,
                        host_key_ref="--host-key/--known-hosts")


@click.command("init")
@click.option("--host", metavar="ADDR", help="Discover the running stack on this server (SSH).")
@click.option("--host-key", metavar='"TYPE BASE64"',
              help="The server's pinned SSH host key (e.g. from ssh-keyscan).")
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path),
              help="Take the pinned host key from this known_hosts file.")
@click.option("--ssh-user", default="root", show_default=True, help="SSH login user.")
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--ssh-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Private key to log in with (needed with --host).")
@click.option("--compose", "compose_files", multiple=True, metavar="FILE",
              help="Compose file (repeatable; on the server with --host). Default: found.")
@click.option("--env-file", "env_files", multiple=True, metavar="FILE",
              help="Env file passed to compose with --env-file (repeatable).")
@click.option("--project", metavar="NAME", help="Compose project name. Default: found.")
@click.option("--name", "node_name", default="node1", show_default=True,
              help="Inventory name of this server.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the draft to PATH instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing --write PATH.")
@output_option
def init(host: str | None, host_key: str | None, known_hosts: Path | None, ssh_user: str,
         ssh_port: int, ssh_key: Path | None, compose_files: tuple[str, ...],
         env_files: tuple[str, ...], project: str | None, node_name: str,
         write_path: Path | None, force: bool, output: OutputFormat) -> None:
    """Discover a single-node compose stack and write an inventory draft (changes nothing)."""
    if write_path is not None and write_path.exists() and not force:
        raise UsageError(f"{write_path} exists; choose another path or add --force")
    if host:
        pinned = _pinned_key(host, ssh_port, host_key, known_hosts)
        if ssh_key is None:
            raise UsageError("--host needs --ssh-key FILE (the private key to log in with)")
        key = str(ssh_key.expanduser().absolute())
        transport = open_transport(node_name, host, ssh_port, ssh_user, key, pinned)
        try:
            stack = discover_remote(transport, files=compose_files, env_files=env_files,
                                    project=project, progress=progress)
        finally:
            transport.close()
        ssh = SshInfo(host, ssh_user, ssh_port, key, pinned)
    else:
        if host_key or known_hosts:
            raise UsageError("--host-key/--known-hosts are used with --host only")
        files = [Path(f) for f in compose_files] or default_compose_files(Path.cwd())
        stack = discover_offline(files, [Path(e) for e in env_files], project)
        ssh = SshInfo(user=None, key=str(ssh_key.expanduser().absolute()) if ssh_key else None)
    text, todo = render_draft(stack, ssh, node_name)
    if write_path is not None:
        write_path.write_text(text, encoding="utf-8")
        progress(f"wrote {write_path}: {todo} value(s) to fill in (<TODO>)")
    data = {**stack.to_dict(), "draft": {"path": str(write_path) if write_path else None,
                                         "todo": todo}}
    emit(data, output, lambda d, c: _render(d, c, text, write_path is None))


def _render(data: dict[str, Any], console: Console, text: str, print_draft: bool) -> None:
    if print_draft:
        console.file.write(text)  # exactly the YAML, so `hapair init > inventory.yaml` works
        console.file.flush()
        return
    for line in summary_lines(data):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The human summary printed after `--write` (pure, tested on data)."""
    roles = data["roles"]
    found = [f"{role}={name}" for role, name in roles.items() if role != "worker" and name]
    if roles.get("worker"):
        found.append("worker=" + ",".join(roles["worker"]))
    counts: dict[str, int] = {}
    for f in data["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    where = f"over SSH from {data['host']}" if data["host"] else "offline"
    lines = [
        f"project   {data['project']} ({where})",
        f"services  {' '.join(found) or 'none recognised'}",
        f"draft     {data['draft']['path']}: {data['draft']['todo']} value(s) to fill in",
        "findings  " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"),
    ]
    lines += [f"  [{f['severity']}] {f['message']}" for f in data["findings"]
              if f["severity"] != "info"]
    return lines


# --- the pinned host key -----------------------------------------------------------------------


def _pinned_key(host: str, port: int, host_key: str | None, known_hosts: Path | None) -> str:
    if bool(host_key) == bool(known_hosts):
        raise UsageError(
            "--host needs the server's SSH host key pinned: give --host-key 'ssh-ed25519 AAAA…' "
            "(ssh-keyscan -t ed25519 ADDR) or --known-hosts FILE, one of them; hapair never "
            "trusts a key on first use")
    if host_key:
        return host_key
    assert known_hosts is not None
    try:
        text = known_hosts.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{known_hosts}: cannot read: {exc.strerror or exc}") from None
    key = host_key_from_known_hosts(text, host, port)
    if key is None:
        raise UsageError(f"{known_hosts}: no key for {_known_name(host, port)}")
    return key


def _known_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def host_key_from_known_hosts(text: str, host: str, port: int = 22) -> str | None:
    """The host's key ("TYPE BASE64") from known_hosts text: plain, wildcard or hashed
    (`|1|salt|hash`) names; a @revoked key for the host is refused; ed25519 preferred."""
    name = _known_name(host, port)
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3 or not _names_match(fields[0], name):
            continue
        if marker == "@revoked":
            raise UsageError(f"known_hosts revokes a key of {name}: refusing to guess")
        if marker is None:
            found.append((fields[1], fields[2]))
    if not found:
        return None
    found.sort(key=lambda kv: _KEY_PREFERENCE.index(kv[0]) if kv[0] in _KEY_PREFERENCE else 99)
    return f"{found[0][0]} {found[0][1]}"


def _names_match(patterns: str, name: str) -> bool:
    if patterns.startswith("|1|"):
        try:
            _, _, salt, digest = patterns.split("|", 3)
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(base64.b64encode(mac).decode(), digest)
        except (ValueError, binascii.Error):
            return False
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _wildcard(pattern[1:], name):
                return False
        elif _wildcard(pattern, name):
            matched = True
    return matched


def _wildcard(pattern: str, name: str) -> bool:
    """OpenSSH patterns: only `*` and `?` are special ("[host]:port" is literal)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None
