"""SSHTransport: commands and files on a remote host over SSH (paramiko), host key pinned.

The client knows exactly one host key, the pinned one, and rejects anything else: there is no
known_hosts lookup, no trust-on-first-use, no way to switch checking off. One connection per
transport, opened on first use and reused; each command is its own channel.
"""

from __future__ import annotations

import base64
import binascii
import select
import shlex
import threading
import time
from collections.abc import Sequence

import paramiko

from hapair.errors import Refused, StepFailed, Unreachable, UsageError
from hapair.exec.base import ExecTransport

_CHUNK = 32768
# While stdin data waits for the peer's window, poll often; otherwise select wakes us on data.
_SEND_POLL = 0.02
_IDLE_POLL = 1.0
# Closing a channel does not stop a remote command that neither reads nor writes, and sshd
# refuses "signal" requests for root sessions. So the host enforces the deadline too: coreutils
# `timeout` TERMs the command's process group a little after we give up, then KILLs it.
_REMOTE_GRACE = 2.0
_REMOTE_KILL_AFTER = 5


def parse_host_key(text: str) -> paramiko.PKey:
    """Parse a pinned public key, "TYPE BASE64 [comment]" (an OpenSSH .pub line)."""
    parts = text.split()
    if len(parts) < 2:
        raise ValueError("expected 'TYPE BASE64' (a line of ssh_host_*_key.pub)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return paramiko.PKey.from_type_string(parts[0], blob)
    except (binascii.Error, paramiko.SSHException, paramiko.UnknownKeyType, ValueError) as e:
        raise ValueError(f"not a valid {parts[0]} public key: {e}") from None


def key_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, e.g. SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU."""
    return str(key.fingerprint)


class _RejectAndRemember(paramiko.RejectPolicy):
    """Reject every key not pinned (as RejectPolicy does), remembering it for the message."""

    def __init__(self) -> None:
        self.offered: paramiko.PKey | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.offered = key
        super().missing_host_key(client, hostname, key)


class _TimedOut(Exception):
    pass


class SSHTransport(ExecTransport):
    no_input = b""

    def __init__(
        self,
        name: str,
        address: str,
        port: int = 22,
        user: str = "root",
        key_path: str = "",
        host_key: str = "",
        *,
        host_key_ref: str = "the pinned host key",
        connect_timeout: float = 10.0,
        keepalive: int = 15,
    ) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.key_path = key_path
        self.host_key_ref = host_key_ref  # where the pin lives, e.g. "hosts[1].ssh.host_key"
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        try:
            self.pinned = parse_host_key(host_key)
        except ValueError as e:
            raise UsageError(
                f"{self._where}: invalid pinned host key ({host_key_ref}): {e}"
            ) from None
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    @property
    def _where(self) -> str:
        return f"{self.name} ({self.address}:{self.port})"

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection -------------------------------------------------------------------------

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            client = self._client
            transport = client.get_transport() if client is not None else None
            if client is not None and transport is not None and transport.is_active():
                return client
            if client is not None:
                client.close()
            self._client = self._connect()
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        try:
            pkey = paramiko.PKey.from_path(self.key_path)
        except (OSError, ValueError, paramiko.SSHException) as e:  # ValueError: unreadable format
            raise UsageError(f"{self._where}: cannot load SSH key {self.key_path}: {e}") from None
        client = paramiko.SSHClient()
        # The only key this client knows; OpenSSH's "[addr]:port" form when port != 22.
        known = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        client.get_host_keys().add(known, self.pinned.get_name(), self.pinned)
        policy = _RejectAndRemember()
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                self.address,
                port=self.port,
                username=self.user,
                pkey=pkey,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise Refused(self._mismatch(e.key)) from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise Refused(
                f"{self._where}: SSH authentication as {self.user} with key {self.key_path} "
                f"failed: {e}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            client.close()
            if policy.offered is not None:
                raise Refused(self._mismatch(policy.offered)) from None
            raise Unreachable(f"{self._where}: unreachable over SSH: {_reason(e)}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(self.keepalive)
        return client

    def _mismatch(self, offered: paramiko.PKey) -> str:
        return (
            f"{self._where}: host key mismatch — pinned {key_fingerprint(self.pinned)}, "
            f"offered {key_fingerprint(offered)}; if the host was rebuilt, update "
            f"{self.host_key_ref}"
        )

    def _open_channel(self) -> paramiko.Channel:
        try:
            return _session(self._connected(), self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError):
            # The connection died since its last use (host restarted, idle drop): the command
            # has not started, so one reconnect is safe.
            self.close()
            try:
                return _session(self._connected(), self.connect_timeout)
            except (paramiko.SSHException, OSError, EOFError) as e:
                raise Unreachable(f"{self._where}: unreachable over SSH: {_reason(e)}") from None

    # -- commands ---------------------------------------------------------------------------

    def _exec(self, argv: Sequence[str], data: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        command = shlex.join(argv)
        remote = shlex.join(remote_argv(argv, timeout))
        deadline = time.monotonic() + timeout
        chan = self._open_channel()
        try:
            chan.exec_command(remote)
            out, err = _pump(chan, data, deadline)
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise _TimedOut
            return chan.exit_status, out, err
        except _TimedOut:
            raise StepFailed(f"{self.name}: `{command}` timed out after {timeout:g}s") from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise StepFailed(
                f"{self._where}: SSH connection lost while running `{command}`: {_reason(e)}"
            ) from None
        finally:
            chan.close()


def remote_argv(argv: Sequence[str], timeout: float) -> list[str]:
    """What the host runs: argv under a remote deadline just past ours (pure, tested)."""
    limit = f"{timeout + _REMOTE_GRACE:g}"
    return ["timeout", "-k", str(_REMOTE_KILL_AFTER), limit, *argv]


def _session(client: paramiko.SSHClient, timeout: float) -> paramiko.Channel:
    transport = client.get_transport()
    if transport is None:
        raise paramiko.SSHException("not connected")
    return transport.open_session(timeout=timeout)


def _pump(chan: paramiko.Channel, data: bytes, deadline: float) -> tuple[bytes, bytes]:
    """Feed stdin and collect stdout/stderr together, so neither side can block the other."""
    chan.settimeout(0.0)
    out, err = bytearray(), bytearray()
    sent = 0
    if not data:
        chan.shutdown_write()
    while True:
        if sent < len(data) and chan.send_ready():
            try:
                sent += chan.send(data[sent : sent + _CHUNK])
            except TimeoutError:
                pass  # no window right now
            except OSError:
                sent = len(data)  # the command closed its stdin; like EPIPE locally
            if sent >= len(data):
                chan.shutdown_write()
        while chan.recv_ready():
            out += chan.recv(_CHUNK)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(_CHUNK)
        if chan.eof_received or chan.closed:
            if not (chan.recv_ready() or chan.recv_stderr_ready()):
                return bytes(out), bytes(err)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        poll = _SEND_POLL if sent < len(data) else _IDLE_POLL
        select.select([chan], [], [], min(remaining, poll))


def _reason(e: BaseException) -> str:
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {getattr(x, "strerror", None) or str(x) for x in e.errors.values()}
        return ", ".join(sorted(reasons)).lower()
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__
