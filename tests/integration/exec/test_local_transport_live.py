"""LocalTransport against real local programs (root needed for runuser/chown cases)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_live_helpers import pid_alive, wait_for

from hapair.errors import CommandFailed, StepFailed
from hapair.exec.files import atomic_write_argv
from hapair.exec.local import LocalTransport
from hapair.exec.transport import Transport

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def local() -> Iterator[LocalTransport]:
    t = LocalTransport()
    yield t
    t.close()


def test_is_a_transport(local: LocalTransport) -> None:
    assert isinstance(local, Transport)
    assert local.name == "controller"


def test_exit_codes_and_streams(local: LocalTransport) -> None:
    r = local.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (r.returncode, r.stdout, r.stderr, r.ok) == (3, "out\n", "err\n", False)
    assert r.host == "controller"
    assert local.run(["true"]).ok


def test_check_raises_command_failed_naming_host_and_command(local: LocalTransport) -> None:
    with pytest.raises(CommandFailed) as err:
        local.run(["sh", "-c", "echo nope >&2; exit 2"])
    assert err.value.returncode == 2
    assert str(err.value) == "controller: `sh -c 'echo nope >&2; exit 2'` exited 2: nope"


def test_missing_program_is_127(local: LocalTransport) -> None:
    r = local.run(["/nonexistent/prog"], check=False)
    assert r.returncode == 127 and "No such file" in r.stderr


def test_input_arrives_on_stdin_and_argv_is_not_a_shell_string(local: LocalTransport) -> None:
    assert local.run(["cat"], input="line 1\nline 2\n").stdout == "line 1\nline 2\n"
    args = ["a b", "it's", "$HOME", ";", "*", ""]
    assert local.run(["printf", "%s|", *args]).stdout == "a b|it's|$HOME|;|*||"


def test_input_the_command_never_reads_is_dropped(local: LocalTransport) -> None:
    r = local.run(["sh", "-c", "echo done; exit 4"], input=b"x" * (8 * 1024 * 1024), check=False)
    assert (r.returncode, r.stdout) == (4, "done\n")


def test_large_output_on_both_streams(local: LocalTransport) -> None:
    code = (
        "import sys\n"
        "for _ in range(64):\n"
        "    sys.stdout.write('o' * 65536); sys.stdout.flush()\n"
        "    sys.stderr.write('e' * 65536); sys.stderr.flush()\n"
    )
    r = local.run(["python3", "-c", code])
    assert (len(r.stdout), len(r.stderr)) == (64 * 65536, 64 * 65536)


def test_timeout_names_host_and_command_and_kills_the_process_group(
    local: LocalTransport, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"]
    with pytest.raises(StepFailed, match=r"^controller: `sh -c .*sleep 30.*` timed out after 1s$"):
        local.run(argv, timeout=1)
    child = int(pidfile.read_text())
    wait_for(lambda: not pid_alive(child), "the background sleep to be killed", timeout=10)


@ROOT
def test_user_and_env(local: LocalTransport) -> None:
    r = local.run(["sh", "-c", 'echo "$(id -un) $X"'], user="nobody", env={"X": "a b"})
    assert r.stdout == "nobody a b\n"
    assert r.argv[:5] == ("runuser", "-u", "nobody", "--", "env")


def test_prefix_is_prepended(tmp_path: Path) -> None:
    t = LocalTransport("lab-node1", prefix=["env", "HAPAIR_PREFIX=yes"])
    assert t.run(["sh", "-c", "echo $HAPAIR_PREFIX"]).stdout == "yes\n"
    t.write_file(str(tmp_path / "f"), "via prefix")
    assert t.read_file(str(tmp_path / "f")) == b"via prefix"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o755])
def test_write_file_mode_content_and_no_leftovers(
    local: LocalTransport, tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "secret.conf"
    data = b"\x00\xffbinary\nand text\n" * 1000
    local.write_file(str(path), data, mode=mode)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.conf"]
    assert local.read_file(str(path)) == data


def test_write_file_replaces_a_looser_file_atomically(
    local: LocalTransport, tmp_path: Path
) -> None:
    path = tmp_path / "pw"
    path.write_text("old")
    path.chmod(0o644)
    inode = path.stat().st_ino
    local.write_file(str(path), "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # a rename, not an in-place rewrite


@ROOT
def test_write_file_owner(local: LocalTransport, tmp_path: Path) -> None:
    path = tmp_path / "owned"
    local.write_file(str(path), "x", mode=0o640, owner="nobody:nogroup")
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (_uid("nobody"), _gid("nogroup"))
    assert stat.S_IMODE(st.st_mode) == 0o640


def test_write_file_failure_leaves_nothing(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(CommandFailed):
        local.write_file(str(tmp_path / "missing-dir" / "f"), "x")
    with pytest.raises(CommandFailed):
        local.write_file(str(tmp_path / "f"), "x", owner="no-such-user-hapair")
    assert list(tmp_path.iterdir()) == []


def test_read_file_missing(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        local.read_file(str(tmp_path / "absent"))


@pytest.mark.parametrize(("mode", "born_at_most"), [(0o644, 0o600), (0o400, 0o400)])
def test_temp_file_is_never_looser_than_requested(
    tmp_path: Path, mode: int, born_at_most: int
) -> None:
    """Hold the write snippet mid-stream and look at the temp file it is filling."""
    tmp, final = tmp_path / ".f.tmp", tmp_path / "f"
    argv = atomic_write_argv(str(final), mode=mode, temp_path=str(tmp))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"first half ")
        proc.stdin.flush()
        wait_for(lambda: tmp.exists() and tmp.stat().st_size > 0, "the temp file", timeout=10)
        assert stat.S_IMODE(tmp.stat().st_mode) & ~born_at_most == 0
        assert not final.exists()
        proc.stdin.write(b"second half")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert final.read_bytes() == b"first half second half"
    assert stat.S_IMODE(final.stat().st_mode) == mode
    assert not tmp.exists()


def _uid(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def _gid(group: str) -> int:
    return grp.getgrnam(group).gr_gid
