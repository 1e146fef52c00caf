"""The live set of observe_live.py, started once per session and stopped by pid at the end
(also when a test or the setup fails); logs are printed on the way out."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from observe_live import (
    PG_BIN,
    Live,
    Procs,
    Stubs,
    make_root,
    start_etcd,
    start_pgbouncers,
    start_postgres,
    start_redis,
    start_routers,
    start_stubs,
)

NEEDED = ("redis-server", "etcd", "etcdctl", "haproxy", "pgbouncer")


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    missing = [b for b in NEEDED if shutil.which(b) is None]
    if os.geteuid() != 0 or not (PG_BIN / "postgres").exists() or missing:
        pytest.skip(f"needs root, PostgreSQL 15 and {', '.join(NEEDED)} (missing: {missing})")
    root = make_root()
    sock = root / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", "postgres")
    shutil.chown(root, "postgres", "postgres")
    env = Live(root, Procs(root), Stubs(), sock)
    try:
        start_postgres(env)
        start_redis(env)
        start_etcd(env)
        start_stubs(env)
        start_routers(env)
        start_pgbouncers(env)
        yield env
    finally:
        env.procs.stop_all()
        env.stubs.close()
        for name in env.procs.started:
            text = env.procs.log(name)
            if text.strip():
                print(f"--- {name} (tail) ---\n{text[-800:]}")
        shutil.rmtree(root, ignore_errors=True)
