"""Readiness means "accepts writes": outages and read-only dependencies give 503 naming them.

Each test restores what it broke (in `finally`), so the order of the tests does not matter.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from cms_stack import HOST, Stack, wait_until

pytestmark = pytest.mark.cms_stack


def health(backend: httpx.Client) -> tuple[int, dict]:
    response = backend.get("/health/")
    return response.status_code, response.json()


def assert_only_failing(body: dict, part: str) -> None:
    assert body["status"] == "fail"
    assert body["failing"] == [part]
    assert body["checks"][part]["ok"] is False
    assert body["checks"][part]["error"]
    assert part in body["reason"]


def wait_healthy(backend: httpx.Client) -> None:
    wait_until("health 200", lambda: backend.get("/health/").status_code == 200, timeout=20)


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a process we started (a hung dependency), always SIGCONT it afterwards."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_health_ok_when_all_accept_writes(backend: httpx.Client) -> None:
    status, body = health(backend)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "storage"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["database"]["in_recovery"] is False
    assert backend.get("/health/").headers["cache-control"] == "no-store"


def test_health_head_has_no_body(backend: httpx.Client) -> None:
    response = backend.head("/health/")
    assert response.status_code == 200
    assert response.content == b""


def test_liveness_is_200(backend: httpx.Client) -> None:
    assert backend.get("/health/liveness/").status_code == 200


def test_health_names_storage_before_buckets_exist(stack: Stack) -> None:
    body = stack.facts["health_before_buckets"]
    assert_only_failing(body, "storage")
    assert "does not exist" in body["checks"]["storage"]["error"]


def test_app_start_does_not_migrate(stack: Stack) -> None:
    assert stack.facts["tables_before_migrate"] == 0
    with stack.pg_connect() as conn:
        assert conn.execute("SELECT to_regclass('public.articles_article')").fetchone()[0]


def test_ensure_buckets_is_idempotent(stack: Stack) -> None:
    assert "media-public: created" in stack.facts["ensure_buckets_stdout"]
    again = stack.manage("ensure_buckets")
    assert again.returncode == 0, again.stderr
    assert "media-public: exists" in again.stdout
    assert "media-private: exists" in again.stdout


def test_health_503_names_database_while_postgres_is_stopped(
    stack: Stack, backend: httpx.Client
) -> None:
    stack.stop_postgres()
    try:
        status, body = health(backend)
        assert status == 503
        assert_only_failing(body, "database")
        # API calls that need the database say so with a 503, not a 500.
        write = backend.post("/api/articles/", json={"title": "during outage"})
        assert write.status_code == 503
        assert write.json()["dependency"] == "database"
    finally:
        stack.start_postgres()
    wait_healthy(backend)
    assert health(backend)[0] == 200


def test_health_503_names_database_while_postgres_is_frozen(
    stack: Stack, backend: httpx.Client
) -> None:
    postmaster = stack.postmaster_pid()
    assert postmaster
    with frozen(postmaster):
        status, body = health(backend)  # bounded: the client timeout is far above the check's
    assert status == 503
    assert_only_failing(body, "database")
    wait_healthy(backend)


def test_health_503_names_database_when_it_is_read_only(
    stack: Stack, backend: httpx.Client
) -> None:
    with stack.pg_connect() as conn:
        conn.execute("ALTER DATABASE cms SET default_transaction_read_only = on")
    try:
        status, body = health(backend)
        assert status == 503
        assert_only_failing(body, "database")
        assert "read-only" in body["checks"]["database"]["error"]
    finally:
        with stack.pg_connect() as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute("ALTER DATABASE cms SET default_transaction_read_only = off")
    wait_healthy(backend)


def test_health_503_names_redis_when_it_becomes_a_read_only_replica(
    stack: Stack, backend: httpx.Client
) -> None:
    client = stack.redis_client()
    client.execute_command("REPLICAOF", HOST, str(stack.ports.dead))
    try:
        status, body = health(backend)
        assert status == 503
        assert_only_failing(body, "redis")
        assert "read-only" in body["checks"]["redis"]["error"]
        # Writing a session now fails cleanly as 503 naming redis.
        session = backend.post("/api/session/", json={"x": 1})
        assert session.status_code == 503
        assert session.json()["dependency"] == "redis"
    finally:
        client.execute_command("REPLICAOF", "NO", "ONE")
    wait_healthy(backend)


def test_health_503_names_redis_while_it_is_frozen(stack: Stack, backend: httpx.Client) -> None:
    with frozen(stack.procs["redis"].pid):
        status, body = health(backend)
    assert status == 503
    assert_only_failing(body, "redis")
    wait_healthy(backend)


def test_health_503_names_storage_while_it_is_down_and_media_survives(
    stack: Stack, backend: httpx.Client
) -> None:
    payload = os.urandom(4096)
    url = backend.post("/api/media/", files={"file": ("a.bin", payload)}).json()["url"]
    stack.stop("s3")
    try:
        status, body = health(backend)
        assert status == 503
        assert_only_failing(body, "storage")
        assert backend.get(url).status_code == 503
    finally:
        stack.start_s3()
    wait_healthy(backend)
    assert backend.get(url).content == payload


def test_logs_hold_no_secrets(stack: Stack, backend: httpx.Client) -> None:
    backend.get("/health/")
    text = "".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log"))
    assert "Booting worker" in text  # the backend's log really is among them
    for secret in stack.secrets.values():
        assert secret not in text
