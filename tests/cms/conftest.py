"""Fixtures for the CMS tests: the backend's packages on sys.path (for the pure unit tests) and
one session-scoped stack of real services (for the contract tests, marker `cms_stack`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from cms_stack import BACKEND_DIR, HOST, Stack, wait_until

sys.path.insert(0, str(BACKEND_DIR))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cms_stack: starts real PostgreSQL, Redis, an S3 server, gunicorn and node on loopback "
        "(needs root)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (PostgreSQL must run as the postgres user)")
    for item in items:
        if item.get_closest_marker("cms_stack"):
            item.add_marker(skip)


def _start(stack: Stack, cleanup: ExitStack) -> None:
    stack.init_postgres()
    cleanup.callback(stack.stop_postgres)
    stack.start_postgres()
    stack.create_owner()
    cleanup.callback(stack.stop, "redis")
    stack.start_redis()
    cleanup.callback(stack.stop, "s3")
    stack.start_s3()
    stack.write_env_file()

    # The app must not migrate on start (ORIGINAL_DEFECTS.md item 24): start it on an empty
    # database, let it answer, and record which tables exist before `migrate` runs.
    cleanup.callback(stack.stop, "backend")
    stack.start_backend()
    backend = f"http://{HOST}:{stack.ports.backend}"
    httpx.get(f"{backend}/health/", timeout=10)
    with stack.pg_connect() as conn:
        stack.facts["tables_before_migrate"] = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]
    stack.facts["health_before_buckets"] = httpx.get(f"{backend}/health/", timeout=10).json()

    for step in (("migrate", "--noinput"), ("ensure_buckets",)):
        result = stack.manage(*step)
        assert result.returncode == 0, f"manage.py {step[0]}: {result.stderr[-3000:]}"
        stack.facts[f"{step[0]}_stdout"] = result.stdout
    wait_until(
        "backend health 200",
        lambda: httpx.get(f"{backend}/health/", timeout=10).status_code == 200,
        timeout=20,
    )
    cleanup.callback(stack.stop, "frontend")
    stack.start_frontend()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole CMS on loopback; every process is stopped by pid at the end, even on failure."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    stack = Stack()
    with ExitStack() as cleanup:
        cleanup.callback(stack.remove)
        cleanup.callback(lambda: [stack.stop(name) for name in list(stack.procs)])
        _start(stack, cleanup)
        yield stack


@pytest.fixture()
def backend(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{HOST}:{stack.ports.backend}", timeout=15) as client:
        yield client


@pytest.fixture()
def frontend(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{HOST}:{stack.ports.frontend}", timeout=15) as client:
        yield client
