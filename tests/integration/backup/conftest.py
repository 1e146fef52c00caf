"""A real primary + streaming standby (PostgreSQL 15) on loopback, shared by the suite.

node1 = primary on 127.0.0.1:18701, node2 = hot standby on 127.0.0.1:18702, both with their
socket in the suite's temp dir. Both "nodes" are this machine, reached with LocalTransport;
each test gets its own backup directories. Everything is stopped by the pid we started and
the temp dir is removed, also when a test or the setup fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import pytest
from backup_live_helpers import (
    DATA_SQL,
    PG_BIN,
    PRIMARY_PORT,
    STANDBY_PORT,
    TABLES_SQL,
    Live,
    Server,
    as_postgres,
    initdb,
    make_root,
    wait_for,
    write_inventory,
)


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    if os.geteuid() != 0 or not (PG_BIN / "postgres").exists():
        pytest.skip("needs root and PostgreSQL 15 in /usr/lib/postgresql/15/bin")
    root = make_root("hapair-backup-it-")
    sock = root / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", "postgres")
    primary = Server("node1", root / "pg1", PRIMARY_PORT, sock, root / "pg1.log")
    standby = Server("node2", root / "pg2", STANDBY_PORT, sock, root / "pg2.log")
    password = secrets.token_urlsafe(16) + ":\\x"  # ':' and '\' exercise the passfile escaping
    try:
        initdb(primary.data, password)
        primary.start()
        primary.sql(DATA_SQL)
        primary.sql(TABLES_SQL, database="cms")
        as_postgres([str(PG_BIN / "pg_basebackup"), "-h", str(sock), "-p", str(PRIMARY_PORT),
                     "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"], timeout=120)
        standby.start()
        wait_for("node2 streaming", lambda: standby.sql(
            "SELECT status FROM pg_stat_wal_receiver") == "streaming")
        inv = write_inventory(root, superuser_password=password, port=PRIMARY_PORT)
        env = Live(root, primary, standby, inv, password)
        env.caught_up()
        yield env
    finally:
        for server in (standby, primary):
            server.stop()
            if server.log.exists():
                print(f"--- {server.log} ---\n{server.tail()}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dirs(live: Live, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """This test's backup directories (created by hapair itself) and audit logs."""
    base = live.root / "t" / request.node.name.replace("[", "-").replace("]", "")
    base.parent.mkdir(exist_ok=True)
    shutil.chown(base.parent, "postgres", "postgres")
    out = {
        "node1": str(base / "node1" / "backups"),
        "node2": str(base / "node2" / "backups"),
        "audit1": str(base / "audit" / "node1.log"),
        "audit2": str(base / "audit" / "node2.log"),
    }
    yield out
    shutil.rmtree(base, ignore_errors=True)
