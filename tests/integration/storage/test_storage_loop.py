"""The replication loop's schedule, run for real (sh, timeout, date, curl) with a stand-in
rclone that records its arguments and fails on demand: full pass first, then windows that
widen while passes fail, periodic full passes, the state file, a clean stop — and the
writer rule: from a source whose Patroni answers GET /primary 200, full passes that
overwrite; from any other, add-only windows from the last good pass, kept across restarts.
Patroni stand-in on 127.0.0.1:17033."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_live import FakePatroni, processes_mentioning, wait_for

from hapair.components.storage.replication import Pull, ReplicationSettings, render_script
from hapair.components.storage.site import Site

FAKE_RCLONE = """#!/bin/sh
# records one line per call: epoch seconds, then the arguments
echo "$(date +%s) $*" >> {d}/calls.log
[ -e {d}/fail ] && exit 1
exit 0
"""


class Loop:
    def __init__(self, d: Path, proc: subprocess.Popen[bytes]) -> None:
        self.d = d
        self.proc = proc

    def calls(self) -> list[str]:
        log = self.d / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def state(self) -> dict[str, object]:
        return json.loads((self.d / "state" / "replication.json").read_text())

    def wait_calls(self, n: int) -> list[str]:
        return wait_for(lambda: len(self.calls()) >= n and self.calls(), f"{n} rclone calls")


@pytest.fixture
def loop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Loop]:
    full_every, url = getattr(request, "param", (6, None))
    (tmp_path / "state").mkdir()
    fake = tmp_path / "rclone"
    fake.write_text(FAKE_RCLONE.format(d=tmp_path))
    fake.chmod(0o755)
    settings = ReplicationSettings(
        interval_s=1, full_every_s=full_every, overlap_s=5, rclone=str(fake),
        config_dir=str(tmp_path), state_dir=str(tmp_path / "state"),
    )
    pull = Pull(Site("node1", "127.0.0.1", 17001), Site("node2", "127.0.0.1", 17002),
                ("media-public", "media-private"), settings, url)
    script = tmp_path / "replicate.sh"
    script.write_text(render_script(pull))
    out = open(tmp_path / "loop.out", "wb")  # noqa: SIM115 - closed in the finalizer
    proc = subprocess.Popen(["/bin/sh", str(script)], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    running = Loop(tmp_path, proc)
    try:
        yield running
    finally:
        stop_loop(running.proc)  # the current one: a test may have restarted the loop
        out.close()


def max_age(call: str) -> int | None:
    m = re.search(r"--max-age (\d+)s", call)
    return int(m[1]) if m else None


def test_full_first_then_windows(loop: Loop) -> None:
    calls = loop.wait_calls(6)
    first, second = calls[0], calls[1]
    assert " copy node1:media-public node2:media-public --checksum " in first
    assert " copy node1:media-private node2:media-private " in second
    assert max_age(first) is None and max_age(second) is None  # the first pass is full
    windows = calls[2:6]
    assert all(max_age(c) is not None and "--no-traverse" in c for c in windows)
    # window = time since the last good pass started (1-3 s here) + the 5 s overlap
    assert all(5 <= (max_age(c) or 0) <= 5 + 4 for c in windows)
    state = wait_for(lambda: loop.state().get("mode") == "window" and loop.state(), "state")
    assert (state["source"], state["target"], state["ok"], state["interval"]) == (
        "node1", "node2", True, 1)
    assert state["last_ok"] >= state["last_full_ok"] > 0  # type: ignore[operator]


@pytest.mark.parametrize("loop", [(3600, None)], indirect=True)  # no full pass in the way
def test_failed_passes_widen_the_window(loop: Loop) -> None:
    loop.wait_calls(4)  # one full pass and one window pass succeeded
    (loop.d / "fail").touch()
    failing_from = len(loop.calls())
    wait_for(lambda: not loop.state()["ok"], "a failed pass")
    time.sleep(3)  # let several passes fail: each window must reach back further
    (loop.d / "fail").unlink()
    n = len(loop.calls())
    calls = loop.wait_calls(n + 2)
    failed_ages = [max_age(c) for c in calls[failing_from:n] if max_age(c) is not None]
    assert failed_ages == sorted(failed_ages) and failed_ages[-1] > failed_ages[0]
    # the first pass after the failures still covers the whole outage
    assert (max_age(calls[n]) or 0) >= failed_ages[-1]
    wait_for(lambda: loop.state()["ok"] is True, "a good pass again")


def test_periodic_full_pass_and_clean_stop(loop: Loop) -> None:
    calls = wait_for(lambda: [c for c in loop.calls()[2:] if max_age(c) is None],
                     "a second full pass", timeout=20)
    assert calls  # full_every_s=6: a full pass comes back without --max-age
    os.killpg(loop.proc.pid, signal.SIGTERM)
    loop.proc.wait(timeout=10)
    wait_for(lambda: not processes_mentioning(str(loop.d)), "no process of the loop left", 5)


PRIMARY = "http://127.0.0.1:17033/primary"


@pytest.fixture
def patroni() -> Iterator[FakePatroni]:
    fake = FakePatroni(17033)
    try:
        yield fake
    finally:
        fake.stop()


def start_loop(d: Path) -> subprocess.Popen[bytes]:
    out = open(d / "loop.out", "ab")  # noqa: SIM115 - inherited by the child, closed here
    try:
        return subprocess.Popen(["/bin/sh", str(d / "replicate.sh")], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def stop_loop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created, as supervisord does
        proc.wait(timeout=10)


@pytest.mark.parametrize("loop", [(3600, PRIMARY)], indirect=True)
def test_only_the_writer_overwrites(loop: Loop, patroni: FakePatroni) -> None:
    # the source is not the writer: add only, never a full overwrite
    calls = loop.wait_calls(4)
    assert all("--ignore-existing" in c for c in calls[:4])
    assert max_age(calls[0]) is None  # no good pass known yet: an add-only full listing
    assert all(max_age(c) is not None for c in calls[2:4])
    assert loop.state()["source_writer"] is False
    # the source becomes the writer: a full pass with --checksum, nothing add-only
    patroni.primary = True
    n = len(loop.calls())
    later = wait_for(lambda: [c for c in loop.calls()[n:] if "--ignore-existing" not in c],
                     "a pass from the writer")
    assert max_age(later[0]) is None and "--checksum" in later[0]
    wait_for(lambda: loop.state()["source_writer"] is True and loop.state()["ok"],
             "the state to say so")


@pytest.mark.parametrize("loop", [(3600, PRIMARY)], indirect=True)
def test_add_only_windows_continue_after_a_restart(loop: Loop, patroni: FakePatroni) -> None:
    loop.wait_calls(4)
    kept = wait_for(lambda: loop.state()["last_ok"], "a good pass")
    stop_loop(loop.proc)
    (loop.d / "calls.log").unlink()
    loop.proc = start_loop(loop.d)
    first = loop.wait_calls(1)[0]
    # not a full listing again: a window reaching back to the last good pass before the stop
    age = max_age(first)
    assert age is not None and "--ignore-existing" in first
    assert age >= int(time.time()) - int(kept) + 5 - 2  # type: ignore[call-overload]
