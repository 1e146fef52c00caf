"""Readiness logic without services: verdicts, reasons, and the deadline on stuck checks."""

from __future__ import annotations

import threading

from articles.health import CheckFailed, CheckResult, run_checks, summarize


def test_summarize_all_ok() -> None:
    status, body = summarize({"database": CheckResult(ok=True, detail={"in_recovery": False})})
    assert status == 200
    assert body == {
        "status": "ok",
        "checks": {"database": {"ok": True, "ms": 0.0, "in_recovery": False}},
    }


def test_summarize_names_each_failing_part_and_reason() -> None:
    status, body = summarize(
        {
            "database": CheckResult(ok=True),
            "redis": CheckResult(ok=False, error="read-only replica"),
            "storage": CheckResult(ok=False, error="bucket missing"),
        }
    )
    assert status == 503
    assert body["status"] == "fail"
    assert body["failing"] == ["redis", "storage"]
    assert body["reason"] == "redis: read-only replica; storage: bucket missing"
    assert body["checks"]["redis"]["error"] == "read-only replica"
    assert "error" not in body["checks"]["database"]


def test_run_checks_turns_exceptions_into_reasons() -> None:
    def standby() -> dict:
        raise CheckFailed("database is in recovery")

    def broken() -> dict:
        raise ConnectionRefusedError("refused")

    results = run_checks({"database": standby, "redis": broken, "storage": lambda: {"x": 1}})
    assert results["database"].error == "database is in recovery"
    assert results["redis"].error == "ConnectionRefusedError: refused"
    assert results["storage"].ok and results["storage"].detail == {"x": 1}


def test_run_checks_gives_up_on_a_stuck_check_at_the_deadline() -> None:
    release = threading.Event()
    try:
        results = run_checks(
            {"database": lambda: release.wait(30) and {}, "redis": lambda: {}}, deadline=0.2
        )
    finally:
        release.set()
    assert not results["database"].ok
    assert "timed out" in results["database"].error
    assert results["redis"].ok
