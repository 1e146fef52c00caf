"""RecordingTransport: what it records, how it picks replies, its in-memory files."""

from __future__ import annotations

import pytest

from hapair.errors import CommandFailed, StepFailed
from hapair.exec.recording import Call, RecordingTransport, Reply, StoredFile
from hapair.exec.transport import Transport


def test_is_a_transport() -> None:
    assert isinstance(RecordingTransport(), Transport)


def test_records_runs_with_input_user_env_and_timeout() -> None:
    t = RecordingTransport("node1")
    result = t.run(["psql", "-c", "select 1"], input="secret", user="postgres",
                   env={"PGHOST": "/run"}, timeout=5)
    assert result.ok and result.host == "node1"
    assert result.argv == ("runuser", "-u", "postgres", "--", "env", "PGHOST=/run",
                           "psql", "-c", "select 1")
    assert t.calls == [Call("run", ("psql", "-c", "select 1"), input=b"secret",
                            user="postgres", env={"PGHOST": "/run"}, timeout=5)]
    assert t.commands == [("psql", "-c", "select 1")]
    assert t.calls[0].wrapped == list(result.argv)


def test_exact_beats_prefix_beats_default() -> None:
    t = RecordingTransport(default=Reply(stdout="default"))
    t.on_prefix(["git"], stdout="git")
    t.on_prefix(["git", "status"], stdout="git status")
    t.on(["git", "status", "-s"], stdout="exact")
    assert t.run(["git", "status", "-s"]).stdout == "exact"
    assert t.run(["git", "status", "--long"]).stdout == "git status"
    assert t.run(["git", "log"]).stdout == "git"
    assert t.run(["gitk"]).stdout == "default"
    assert t.run(["ls"]).stdout == "default"


def test_replies_are_used_in_order_and_the_last_repeats() -> None:
    t = RecordingTransport()
    t.on(["pg_isready"], Reply(2), Reply(2), Reply(0))
    assert [t.run(["pg_isready"], check=False).returncode for _ in range(5)] == [2, 2, 0, 0, 0]


def test_check_raises_command_failed_like_a_real_transport() -> None:
    t = RecordingTransport("node2").on(["false"], returncode=1, stderr="nope\n")
    with pytest.raises(CommandFailed, match=r"node2: `false` exited 1: nope"):
        t.run(["false"])
    assert t.run(["false"], check=False).returncode == 1


def test_scripted_exception_is_raised() -> None:
    t = RecordingTransport().on(["sleep", "9"], Reply(raises=StepFailed("timed out")))
    with pytest.raises(StepFailed, match="timed out"):
        t.run(["sleep", "9"])
    assert t.commands == [("sleep", "9")]


def test_in_memory_files() -> None:
    t = RecordingTransport(files={"/etc/a": "seeded\n"})
    assert t.read_file("/etc/a") == b"seeded\n"
    t.write_file("/etc/b", "new", mode=0o640, owner="postgres")
    assert t.files["/etc/b"] == StoredFile(b"new", 0o640, "postgres")
    assert t.text("/etc/b") == "new"
    with pytest.raises(FileNotFoundError):
        t.read_file("/etc/missing")
    assert [c.kind for c in t.calls] == ["read_file", "write_file", "read_file"]
    assert t.commands == []


def test_close_is_recorded() -> None:
    t = RecordingTransport()
    t.close()
    assert t.closed
