"""Opt-in end-to-end test of the image kit: hapair's generated Patroni Dockerfile builds on the
postgres stand-in, and the stand-in behaves like the official image in a compose stack.

Runs only with HAPAIR_DOCKER_E2E=1, in a private engine (private_engine.py: no iptables
changes, nothing pulled). A cold cache debootstraps and builds for several minutes; a warm one
loads tarballs from /var/cache/hapair-e2e. The compose project and the engine are removed even
on failure.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import image_kit
import private_engine
import psycopg
import pytest
from image_recipes import ImageSpec

from hapair.compose.classify import is_alpine
from hapair.compose.generate_configs import PATRONI_VENV, PATRONI_VERSION, patroni_dockerfile
from hapair.compose.runtime import ComposeRuntime
from hapair.compose.yamlio import load_plain
from hapair.exec.local import LocalTransport

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: set HAPAIR_DOCKER_E2E=1 (needs dockerd and debootstrap)"),
    pytest.mark.timeout(3600),  # a cold cache: two debootstraps and five image builds
]

FIXTURE = Path(__file__).parents[2] / "unit/compose/fixtures/idp-cms/docker-compose.yml"
PORTS = range(18700, 18750)  # this test's loopback range
READY_TIMEOUT = 120.0
USER, DB = "idp", "idp_cms"

COMPOSE = """services:
  postgres:
    image: {image}
    env_file: {env_file}
    environment:
      POSTGRES_USER: {user}
      POSTGRES_DB: {db}
      PGDATA: /var/lib/postgresql/data/pgdata
    volumes:
      - pgdata:/var/lib/postgresql/data
    ports:
      - "127.0.0.1:{port}:5432"
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U $${{POSTGRES_USER}} -d $${{POSTGRES_DB}}"]
      interval: 2s
      timeout: 5s
      retries: 30
volumes:
  pgdata:
"""


def _fixture_pg_image() -> str:
    return str(load_plain(FIXTURE.read_text())["services"]["postgres"]["image"])


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {PORTS.start}-{PORTS.stop - 1}")


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    for why in (private_engine.available(), image_kit.available()):
        if why is not None:
            pytest.skip(why)
    with private_engine.private_engine() as host, pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", host)  # for the compose CLI the runtime runs
        yield host


@pytest.fixture(scope="module")
def images(engine: str) -> dict[str, str]:
    return image_kit.ensure_images(engine)


def _run(host: str, *args: str) -> str:
    return image_kit.docker(host, "run", "--rm", "--network", "none", *args,
                            timeout=120.0).stdout.strip()


def test_generated_patroni_dockerfile_builds_on_the_standin(engine: str,
                                                            images: dict[str, str]) -> None:
    pg_image = _fixture_pg_image()
    assert pg_image in images, f"the kit does not make the fixture's {pg_image}"
    major = int(pg_image.split(":", 1)[1].split(".")[0])
    name = f"hapair/patroni:pg{major}"
    spec = ImageSpec((name,), pg_image, patroni_dockerfile(pg_image, is_alpine(pg_image)))
    image_kit.ensure_images(engine, names=spec.names, extra=(spec,))

    version = _run(engine, "--user", "postgres", "--entrypoint", f"{PATRONI_VENV}/bin/patroni",
                   name, "--version")
    assert version == f"patroni {PATRONI_VERSION}"
    # through the image's own entrypoint (a --version must not initdb), from the bin_dir the
    # generator writes into patroni.yml
    out = _run(engine, name, "sh", "-c", "command -v postgres; postgres --version")
    path, version = out.splitlines()
    assert path == f"/usr/lib/postgresql/{major}/bin/postgres"
    assert re.fullmatch(rf"postgres \(PostgreSQL\) {major}\.\d+.*", version)


@pytest.fixture
def stack(engine: str, images: dict[str, str], tmp_path: Path
          ) -> Iterator[tuple[ComposeRuntime, dict[str, object]]]:
    password = secrets.token_urlsafe(18)
    env_file = tmp_path / "pg.env"
    env_file.touch(mode=0o600)
    env_file.write_text(f"POSTGRES_PASSWORD={password}\n")
    port = _free_port()
    (tmp_path / "compose.yaml").write_text(COMPOSE.format(
        image=_fixture_pg_image(), env_file=env_file, user=USER, db=DB, port=port))
    rt = ComposeRuntime(LocalTransport(), f"hapair-kit-{uuid.uuid4().hex[:8]}",
                        [str(tmp_path / "compose.yaml")], timeout=300.0)
    conninfo: dict[str, object] = {"host": "127.0.0.1", "port": port, "user": USER,
                                   "dbname": DB, "password": password, "connect_timeout": 3}
    try:
        yield rt, conninfo
    finally:
        rt.transport.run(rt.argv("down", "-v", "-t", "10"), check=False, timeout=120.0)


def _connect(conninfo: dict[str, object]) -> psycopg.Connection:
    """The first connection that succeeds, within READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            return psycopg.connect(**conninfo, autocommit=True)  # type: ignore[arg-type]
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _wait_healthy(rt: ComposeRuntime) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while "(healthy)" not in (detail := rt.status("postgres").detail):
        assert time.monotonic() < deadline, f"postgres not healthy: {detail}"
        time.sleep(1.0)


def test_postgres_standin_initdb_then_keeps_its_data(
        stack: tuple[ComposeRuntime, dict[str, object]]) -> None:
    rt, conninfo = stack
    rt.start("postgres")
    with _connect(conninfo) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('written before the restart')")
    _wait_healthy(rt)  # the fixture's healthcheck: pg_isready inside the container
    tools = rt.exec("postgres", ["sh", "-c", "for t in pg_isready psql pg_dump; do "
                                 "command -v $t; done"]).stdout
    assert len(tools.split()) == 3, tools

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**{**conninfo, "password": "wrong"})  # type: ignore[arg-type]

    rt.restart("postgres")
    with _connect(conninfo) as conn:
        assert conn.execute("select v from kept").fetchall() == [("written before the restart",)]

    rt.remove("postgres")  # a NEW container on the same named volume: no second initdb
    rt.start("postgres")
    with _connect(conninfo) as conn:
        assert conn.execute("select v from kept").fetchall() == [("written before the restart",)]
    assert "Skipping initialization" in rt.logs("postgres", 50)
