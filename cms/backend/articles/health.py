"""Readiness checks: each dependency must ACCEPT WRITES, and every check is time-bounded.

A node whose database is a standby or whose Redis is a read-only replica is not ready: the
load balancer must send its traffic elsewhere (ORIGINAL_DEFECTS.md item 7).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis
from botocore.exceptions import ClientError
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from articles import storage
from articles.failures import one_line

CHECK_TIMEOUT = 1.5  # seconds, per dependency (connect and each read)
DEADLINE = 2.5  # seconds for all checks together (they run in parallel)


class CheckFailed(Exception):
    """A dependency answered, but not as a writable primary would."""


@dataclass
class CheckResult:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "ms": round(self.ms, 1), **self.detail}
        if not self.ok:
            body["error"] = self.error
        return body


def check_database() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        connect_timeout=2,  # libpq's minimum; covers the whole connection start-up
        tcp_user_timeout=int(CHECK_TIMEOUT * 1000),  # a vanished peer fails the query fast
        application_name="cms-health",
        autocommit=True,
    ) as conn:
        row = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ).fetchone()
    assert row is not None
    in_recovery, read_only = bool(row[0]), row[1] == "on"
    if in_recovery:
        raise CheckFailed("database is in recovery (a standby), it does not accept writes")
    if read_only:
        raise CheckFailed("database transactions are read-only (transaction_read_only=on)")
    return {"in_recovery": False, "read_only": False}


def check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.CACHES["default"]["LOCATION"],
        socket_connect_timeout=CHECK_TIMEOUT,
        socket_timeout=CHECK_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        # A real write: a read-only replica refuses it with READONLY.
        client.set(f"cms:health:{settings.CMS_NODE_NAME}:{os.getpid()}", time.time(), ex=30)
    except redis.exceptions.ReadOnlyError as exc:
        raise CheckFailed(f"redis refuses writes (read-only replica): {one_line(exc)}") from None
    finally:
        client.close()
    return {"write": True}


def check_storage() -> dict[str, Any]:
    bucket = storage.public_bucket()
    try:
        exists = storage.bucket_exists(bucket, profile="probe")
    except ClientError as exc:
        raise CheckFailed(f"bucket {bucket}: {one_line(exc)}") from None
    if not exists:
        raise CheckFailed(f"bucket {bucket} does not exist (run manage.py ensure_buckets)")
    return {"bucket": bucket}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "redis": check_redis,
    "storage": check_storage,
}


def _run_one(
    check: Callable[[], dict[str, Any]], results: dict[str, CheckResult], name: str
) -> None:
    start = time.monotonic()
    try:
        results[name] = CheckResult(ok=True, detail=check())
    except CheckFailed as exc:
        results[name] = CheckResult(ok=False, error=str(exc))
    except Exception as exc:  # any driver error means "not ready", with its reason
        results[name] = CheckResult(ok=False, error=f"{type(exc).__name__}: {one_line(exc)}")
    results[name].ms = (time.monotonic() - start) * 1000


def run_checks(
    checks: Mapping[str, Callable[[], dict[str, Any]]] = CHECKS, deadline: float = DEADLINE
) -> dict[str, CheckResult]:
    """Run the checks in parallel; one still running at the deadline counts as failed.

    Threads are daemons: a check stuck on a frozen server is abandoned, not waited for.
    """
    results: dict[str, CheckResult] = {}
    threads = {
        name: threading.Thread(target=_run_one, args=(fn, results, name), daemon=True)
        for name, fn in checks.items()
    }
    end = time.monotonic() + deadline
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(0.0, end - time.monotonic()))
    return {
        name: results.get(name) or CheckResult(ok=False, error=f"timed out after {deadline}s")
        for name in checks
    }


def summarize(results: Mapping[str, CheckResult]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 only when every check passed."""
    failing = [name for name, result in results.items() if not result.ok]
    body: dict[str, Any] = {
        "status": "fail" if failing else "ok",
        "checks": {name: result.as_json() for name, result in results.items()},
    }
    if failing:
        body["failing"] = failing
        body["reason"] = "; ".join(f"{name}: {results[name].error}" for name in failing)
    return (503 if failing else 200), body
