"""`hapair drill load` through the real CLI entry point: output, exit codes, record file."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from drill_fake_cms import FakeCMS

from hapair.cli import main as main_mod
from hapair.cli.drill import drill


@pytest.fixture(autouse=True)
def drill_registered() -> Iterator[None]:
    """Register the group on the main CLI for these tests (the lead registers it for real)."""
    added = "drill" not in main_mod.cli.commands
    if added:
        main_mod.cli.add_command(drill)
    yield
    if added:
        main_mod.cli.commands.pop("drill", None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main_mod.main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


LOAD = ["drill", "load", "--duration", "1", "--rate", "60", "--workers", "2", "--seed", "1"]


def test_clean_run_json_exit_0(cms: FakeCMS, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run([*LOAD, "--url", cms.url, "-o", "json", "--check-for", "0.5"], capsys)
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert rc == 0
    assert doc["ok"] is True and doc["requests"]["failed"] == 0
    assert doc["requests"]["total"] > 0 and doc["writes"]["acknowledged_total"] > 0
    assert doc["writes"]["checked"] == doc["writes"]["verified"] > 0
    assert doc["run"]["url"] == cms.url and doc["run"]["stopped_by"] == "duration"


def test_failures_print_the_report_then_exit_4(
    cms: FakeCMS, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cms.fail_after(0, 10**6)
    record = tmp_path / "run.jsonl"
    argv = [*LOAD, "--url", cms.url, "--record", str(record), "--check-for", "0"]
    rc, out, err = run(argv, capsys)
    assert rc == 4
    assert out.startswith("FAIL drill ")
    assert "Failures by cause" in out and "http_5xx" in out and "503" in out
    assert "hapair: drill failed: " in err
    kinds = [json.loads(line)["type"] for line in record.read_text().splitlines()]
    assert kinds[0] == "run" and kinds[-2:] == ["check", "report"]
    assert kinds.count("request") == sum(cms.injected.values()) > 0


def test_verbose_progress_goes_to_stderr(cms: FakeCMS, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run([*LOAD, "--url", cms.url, "-o", "json", "-v", "--check-for", "0"], capsys)
    assert rc == 0 and json.loads(out)["ok"] is True
    assert f"→ {cms.url}" in err and "load done (duration)" in err


def test_sigint_stops_the_load_then_checks_and_reports(
    cms: FakeCMS, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt_when_busy() -> None:
        deadline = time.monotonic() + 20
        while cms.requests < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        if cms.requests >= 20:
            os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_when_busy, daemon=True)
    killer.start()
    argv = ["drill", "load", "--url", cms.url, "--duration", "60", "--rate", "50", "-o", "json"]
    rc, out, err = run(argv, capsys)
    killer.join(timeout=5)
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] is True
    assert doc["run"]["stopped_by"] == "stop"
    assert "SIGINT: stopping the load" in err


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (["--url", "ftp://127.0.0.1:18600/"], 2, "http"),
        (["--url", "http://127.0.0.1:18600/", "--duration", "0"], 2, "duration"),
        (["--url", "http://127.0.0.1:18600/", "--workers", "0"], 2, "workers"),
        (["--duration", "1"], 2, "--url"),
        (["--url", "http://192.0.2.1/"], 3, "--allow-any-target"),
        (["--url", "http://10.99.1.10/"], 3, "lab subnet"),
        (["--url", "http://127.0.0.1:18600/", "--record", "/nonexistent/r.jsonl"], 2, "--record"),
    ],
)
def test_usage_and_refusals(
    args: list[str], rc: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(["drill", "load", *args], capsys)
    assert got == rc
    assert out == ""
    assert message in err
