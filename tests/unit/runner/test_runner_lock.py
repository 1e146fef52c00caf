"""The deploy lock: refused with the holder's details, bounded waiting, always released."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from runner_fakes import FakeClock, FakeHost, file_step, hosts

from hapair.errors import ExitCode, Refused
from hapair.exec.journal import read_records
from hapair.exec.lock import ControllerLock, Holder, LockHeld, RemoteLock
from hapair.exec.runner import StepRunFailed, execute
from hapair.plan.step import Check, Fn, FnCheck, Plan, Step, StepKind

CTX = multiprocessing.get_context("fork")


def _hold(root: str, ready: Event, release: Event) -> None:
    holder = Holder.current("hapair upgrade -i prod.yaml", "moving pg to patroni")
    with ControllerLock(Path(root), holder):
        ready.set()
        release.wait(30)


class Held:
    def __init__(self, root: Path) -> None:
        self.ready, self.release = CTX.Event(), CTX.Event()
        self.proc = CTX.Process(target=_hold, args=(str(root), self.ready, self.release))


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Held]:
    """Another process holding the controller lock until `release` is set."""
    h = Held(tmp_path)
    h.proc.start()
    try:
        assert h.ready.wait(15), "the holder process did not take the lock"
        yield h
    finally:
        h.release.set()
        h.proc.join(10)
        if h.proc.is_alive():
            h.proc.kill()  # the process this fixture started, by its handle
            h.proc.join(5)


def test_a_second_run_is_refused_with_the_holders_details(tmp_path: Path, held: Held) -> None:
    with pytest.raises(LockHeld) as err:
        ControllerLock(tmp_path, Holder.current("hapair rollback")).acquire()

    assert err.value.exit_code == ExitCode.REFUSED
    holder = err.value.holder
    assert holder is not None and holder.pid == held.proc.pid
    assert holder.command == "hapair upgrade -i prod.yaml"
    assert "@" in holder.who and holder.since
    assert "moving pg to patroni" in str(err.value) and f"pid {held.proc.pid}" in str(err.value)


def test_lock_wait_polls_then_refuses(tmp_path: Path, held: Held) -> None:
    clock = FakeClock()
    lock = ControllerLock(tmp_path, Holder.current("x"), wait=2.0, poll=0.5,
                          sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(LockHeld):
        lock.acquire()
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]


def test_lock_wait_succeeds_when_the_holder_finishes_in_time(tmp_path: Path, held: Held) -> None:
    def sleep(seconds: float) -> None:
        held.release.set()  # the other run finishes while we wait
        time.sleep(seconds)

    with ControllerLock(tmp_path, Holder.current("x"), wait=20.0, poll=0.05, sleep=sleep) as lock:
        assert lock.read_holder() == lock.holder


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_lock_is_released_on_errors_and_interrupts(tmp_path: Path,
                                                       raised: BaseException) -> None:
    with pytest.raises(type(raised)), ControllerLock(tmp_path, Holder.current("x")):
        raise raised
    assert not (tmp_path / "lock.json").exists()
    with ControllerLock(tmp_path, Holder.current("y")):  # a separate open file: would conflict
        pass


def test_execute_releases_the_lock_after_a_failed_step(tmp_path: Path) -> None:
    def fail(_ctx: object) -> None:
        raise RuntimeError("nope")

    bad = Step(id="upgrade/node1/bad", host="node1", kind=StepKind.COMMAND, reason="fails",
               action=Fn("fail", fail), verify=FnCheck("never", lambda _c: Check(False, "not yet")))
    with pytest.raises(StepRunFailed):
        execute(Plan("upgrade", (bad,)), hosts("node1"), runs_root=tmp_path, command="a")
    report = execute(Plan("upgrade", (file_step("a"),)), hosts("node1"), runs_root=tmp_path,
                     command="b")
    assert report.outcomes[0].step == "upgrade/node1/a"


def test_execute_is_refused_while_another_process_holds_the_lock(
    tmp_path: Path, held: Held
) -> None:
    hs = hosts("node1")
    with pytest.raises(LockHeld, match="moving pg to patroni"):
        execute(Plan("upgrade", (file_step("a"),)), hs, runs_root=tmp_path, command="hapair up")
    assert hs["node1"].calls == []
    assert not (tmp_path / "upgrade").exists()  # refused before any journal


# --- the lock on a designated host ------------------------------------------------------------

LOCK = "/var/lib/hapair/lock"


def remote(host: FakeHost, who: str, **kw: object) -> RemoteLock:
    holder = Holder(who, 100, f"hapair upgrade ({who})", "2025-01-01T00:00:00+00:00", "m")
    return RemoteLock(host, holder, **kw)  # type: ignore[arg-type]


def test_remote_lock_is_an_atomic_mkdir_with_a_holder_file() -> None:
    host = FakeHost("witness")
    with remote(host, "alice@ctl1") as lock:
        assert ("mkdir", "--", LOCK) in host.argvs()
        assert Holder.from_json(host.files[f"{LOCK}/holder.json"]) == lock.holder
    assert LOCK not in host.dirs and f"{LOCK}/holder.json" not in host.files


def test_remote_lock_held_is_refused_with_holder_and_an_explicit_break_hint() -> None:
    host = FakeHost("witness")
    first = remote(host, "alice@ctl1")
    first.acquire()
    clock = FakeClock()
    with pytest.raises(LockHeld) as err:
        remote(host, "bob@ctl2", wait=3.0, poll=1.0, sleep=clock.sleep,
               monotonic=clock.monotonic).acquire()
    assert err.value.holder == first.holder
    assert "witness:/var/lib/hapair/lock" in str(err.value) and "--break-lock" in str(err.value)
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_a_stale_remote_lock_is_broken_only_when_asked_and_the_breaker_is_told() -> None:
    host = FakeHost("witness")
    stale = remote(host, "alice@dead-controller")
    stale.acquire()  # its controller died: the directory stays

    breaker = remote(host, "bob@ctl2", break_lock=True)
    breaker.acquire()
    assert breaker.broken == stale.holder
    stale.release()  # the old holder must not remove the new holder's lock
    assert Holder.from_json(host.files[f"{LOCK}/holder.json"]) == breaker.holder
    breaker.release()
    assert LOCK not in host.dirs


def test_remote_lock_failure_other_than_held_is_a_refusal_with_the_error() -> None:
    host = FakeHost("witness")
    host.handlers[("mkdir", "--", LOCK)] = lambda *_: (1, "", "Permission denied")
    with pytest.raises(Refused, match="cannot create /var/lib/hapair/lock: Permission denied"):
        remote(host, "a").acquire()


def test_execute_journals_a_broken_remote_lock(tmp_path: Path) -> None:
    hs = hosts("node1", "witness")
    remote(hs["witness"], "alice@dead").acquire()
    with pytest.raises(LockHeld):
        execute(Plan("upgrade", (file_step("a"),)), hs, runs_root=tmp_path, command="x",
                lock_host="witness")
    report = execute(Plan("upgrade", (file_step("a"),)), hs, runs_root=tmp_path, command="x",
                     lock_host="witness", break_lock=True)
    first = read_records(Path(report.journal or ""))[0]
    assert first["event"] == "lock.broken" and first["holder"]["who"] == "alice@dead"
    assert LOCK not in hs["witness"].dirs  # released at the end
