"""SSHTransport against a real sshd on 127.0.0.1:18122 with its own keys (see conftest)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_live_helpers import Sshd, pid_alive, wait_for

from hapair.errors import CommandFailed, Refused, StepFailed, UsageError
from hapair.exec.ssh import SSHTransport, key_fingerprint, parse_host_key
from hapair.exec.transport import Transport

UNUSED_PORT = 18199  # in our range, nothing listens there


def transport(sshd: Sshd, **over: object) -> SSHTransport:
    fields: dict[str, object] = {
        "name": "node2",
        "address": "127.0.0.1",
        "port": sshd.port,
        "user": "root",
        "key_path": sshd.client_key,
        "host_key": sshd.host_pub,
        "host_key_ref": "hosts[1].ssh.host_key",
        **over,
    }
    return SSHTransport(**fields)  # type: ignore[arg-type]


@pytest.fixture
def ssh(sshd: Sshd) -> Iterator[SSHTransport]:
    t = transport(sshd)
    yield t
    t.close()


def test_is_a_transport(ssh: SSHTransport) -> None:
    assert isinstance(ssh, Transport)


def test_exit_codes_and_streams(ssh: SSHTransport) -> None:
    r = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (r.host, r.returncode, r.stdout, r.stderr) == ("node2", 3, "out\n", "err\n")
    assert ssh.run(["true"]).ok
    expected = r"^node2: `sh -c 'echo nope >&2; exit 2'` exited 2: nope$"
    with pytest.raises(CommandFailed, match=expected):
        ssh.run(["sh", "-c", "echo nope >&2; exit 2"])
    assert ssh.run(["/nonexistent/prog"], check=False).returncode == 127


def test_argv_is_quoted_not_interpreted(ssh: SSHTransport) -> None:
    args = ["a b", "it's", "$HOME", ";", "*", "", "`id`", "a\nb"]
    assert ssh.run(["printf", "%s|", *args]).stdout == "a b|it's|$HOME|;|*||`id`|a\nb|"


def test_user_and_env(ssh: SSHTransport) -> None:
    r = ssh.run(["sh", "-c", 'echo "$(id -un) $X"'], user="nobody", env={"X": "a b"})
    assert r.stdout == "nobody a b\n"


def test_input_arrives_and_stdin_is_closed(ssh: SSHTransport) -> None:
    assert ssh.run(["cat"], input="line 1\nline 2\n").stdout == "line 1\nline 2\n"
    assert ssh.run(["cat"]).stdout == ""  # no input: EOF at once, no hang
    assert ssh.run(["wc", "-c"], input=b"\x00\xff" * 10).stdout.strip() == "20"


def test_input_the_command_never_reads_is_dropped(ssh: SSHTransport) -> None:
    r = ssh.run(["sh", "-c", "echo done; exit 4"], input=b"x" * (8 * 1024 * 1024), check=False)
    assert (r.returncode, r.stdout) == (4, "done\n")


def test_large_output_on_both_streams(ssh: SSHTransport) -> None:
    code = (
        "import sys\n"
        "for _ in range(64):\n"
        "    sys.stdout.write('o' * 65536); sys.stdout.flush()\n"
        "    sys.stderr.write('e' * 65536); sys.stderr.flush()\n"
    )
    r = ssh.run(["python3", "-c", code])
    assert (len(r.stdout), len(r.stderr)) == (64 * 65536, 64 * 65536)
    assert set(r.stdout) == {"o"} and set(r.stderr) == {"e"}


def test_large_input_echoed_back_does_not_deadlock(ssh: SSHTransport) -> None:
    data = os.urandom(3 * 1024 * 1024).hex()  # 6 MB: well beyond both SSH windows
    assert ssh.run(["cat"], input=data, timeout=60).stdout == data


def test_one_connection_is_reused(sshd: Sshd, ssh: SSHTransport) -> None:
    before = sshd.accepted_logins()
    for _ in range(3):
        ssh.run(["true"])
    ssh.write_file(f"{sshd.dir}/reuse", "x")
    ssh.read_file(f"{sshd.dir}/reuse")
    wait_for(lambda: sshd.accepted_logins() > before, "sshd to log the login")
    assert sshd.accepted_logins() == before + 1


def test_reconnects_when_the_connection_dropped(ssh: SSHTransport) -> None:
    ssh.run(["true"])
    client = ssh._client
    assert client is not None
    client.get_transport().close()  # type: ignore[union-attr]
    assert ssh.run(["echo", "back"]).stdout == "back\n"


def test_timeout_names_the_command_and_kills_it(ssh: SSHTransport, sshd: Sshd) -> None:
    pidfile = sshd.dir / "sleeper.pid"
    with pytest.raises(StepFailed, match=r"^node2: `sh -c .*sleep 30.*` timed out after 1s$"):
        ssh.run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], timeout=1)
    pid = int(wait_for(pidfile.read_text, "the pid file").strip())
    wait_for(lambda: not pid_alive(pid), "the host to kill the timed-out command", timeout=20)
    assert ssh.run(["echo", "still usable"]).stdout == "still usable\n"


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_write_file_mode_and_content(ssh: SSHTransport, sshd: Sshd, mode: int) -> None:
    d = sshd.dir / f"files-{mode:o}"
    d.mkdir()
    path = d / "secret"
    data = b"\x00\xff" + b"binary and text\n" * 5000
    ssh.write_file(str(path), data, mode=mode)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in d.iterdir()] == ["secret"]
    assert ssh.read_file(str(path)) == data


def test_write_file_owner_and_failure(ssh: SSHTransport, sshd: Sshd) -> None:
    path = sshd.dir / "owned"
    ssh.write_file(str(path), "x", owner="nobody")
    assert path.stat().st_uid == 65534
    with pytest.raises(CommandFailed, match="node2"):
        ssh.write_file(str(sshd.dir / "no-dir" / "f"), "x")


def test_read_file_missing(ssh: SSHTransport, sshd: Sshd) -> None:
    with pytest.raises(FileNotFoundError, match="node2"):
        ssh.read_file(str(sshd.dir / "absent"))


def test_a_different_pinned_key_is_refused(sshd: Sshd) -> None:
    other = _other_key(sshd, "ed25519")
    offered = key_fingerprint(parse_host_key(sshd.host_pub))
    pinned = key_fingerprint(parse_host_key(other))
    t = transport(sshd, host_key=other)
    with pytest.raises(Refused) as err:
        t.run(["true"])
    assert str(err.value) == (
        f"node2 (127.0.0.1:{sshd.port}): host key mismatch — pinned {pinned}, offered "
        f"{offered}; if the host was rebuilt, update hosts[1].ssh.host_key"
    )
    assert err.value.exit_code == 3


def test_a_pinned_key_of_another_type_is_refused(sshd: Sshd) -> None:
    other = _other_key(sshd, "ecdsa")
    t = transport(sshd, host_key=other)
    with pytest.raises(Refused, match="host key mismatch — pinned SHA256:.*, offered SHA256:"):
        t.run(["true"])


def test_unreachable_port_is_refused(sshd: Sshd) -> None:
    t = transport(sshd, port=UNUSED_PORT)
    with pytest.raises(Refused, match=rf"^node2 \(127\.0\.0\.1:{UNUSED_PORT}\): unreachable over "
                       r"SSH: connection refused$"):
        t.run(["true"])


def test_unauthorized_key_is_refused(sshd: Sshd) -> None:
    t = transport(sshd, key_path=sshd.other_client_key)
    with pytest.raises(Refused, match=r"^node2 \(127\.0\.0\.1:18122\): SSH authentication as root "
                       r"with key .*stranger_ed25519 failed"):
        t.run(["true"])


def test_missing_private_key_is_a_usage_error(sshd: Sshd) -> None:
    t = transport(sshd, key_path=str(sshd.dir / "nope"))
    with pytest.raises(UsageError, match="cannot load SSH key"):
        t.run(["true"])


def test_a_key_file_that_is_not_a_key_is_a_usage_error(sshd: Sshd) -> None:
    garbage = sshd.dir / "not-a-key"
    garbage.write_text("x\n")
    garbage.chmod(0o600)
    t = transport(sshd, key_path=str(garbage))
    with pytest.raises(UsageError, match=r"cannot load SSH key .*not-a-key"):
        t.run(["true"])


def test_a_secret_on_stdin_never_appears_in_any_argv(ssh: SSHTransport, sshd: Sshd) -> None:
    """While the remote command holds the secret, no process's argv or environ has it."""
    secret = "hapair-secret-" + os.urandom(12).hex()
    got, go = sshd.dir / "got-secret", sshd.dir / "go"
    # Store stdin, then wait (bounded) for our signal: the command is alive while we look.
    script = (
        'cat > "$1"; i=0; '
        'while [ ! -e "$2" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done'
    )
    argv = ["sh", "-c", script, "sh", str(got), str(go)]
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(ssh.run(argv, input=secret)))
    runner.start()
    try:
        wait_for(lambda: got.exists() and got.read_text() == secret, "the secret to arrive")
        seen = _proc_texts()
        assert any(str(go) in text for text in seen)  # the scan does see the running command
        assert not [text for text in seen if secret in text]
    finally:
        go.touch()
        runner.join(timeout=30)
    assert not runner.is_alive() and outcome and outcome[0].ok  # type: ignore[attr-defined]


def _proc_texts() -> list[str]:
    texts = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            for part in ("cmdline", "environ"):
                with contextlib.suppress(OSError):  # gone meanwhile
                    raw = (entry / part).read_bytes()
                    texts.append(raw.replace(b"\0", b" ").decode("latin-1"))
    return texts


def _other_key(sshd: Sshd, kind: str) -> str:
    path = sshd.dir / f"other_{kind}"
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, timeout=30
        )
    return path.with_suffix(".pub").read_text().strip()
