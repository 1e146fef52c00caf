"""A real PgBouncer from the rendered config and userlist; PAUSE/RESUME and SHOW through the
admin console with the builders, judged by the parsers. The admin password reaches psql in a
0600 passfile named by PGPASSFILE, never in argv."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hapair.components.common import Endpoint, Plain
from hapair.components.pgbouncer import (
    PgBouncerParams,
    PgBouncerUser,
    admin_psql_argv,
    check_paused,
    check_resumed,
    parse_show_databases,
    parse_show_pools,
    pause_sql,
    pgbouncer_argv,
    render_pgbouncer_config,
    render_userlist,
    resume_sql,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("pgbouncer") is None or shutil.which("psql") is None,
    reason="needs root (to run pgbouncer as postgres), pgbouncer and psql",
)

ADMIN_PW = Plain('adm "pw"')


def test_pause_resume_through_admin_console(procs, workdir: Path, wait: Callable[..., object],
                                            write_file: Callable[..., Path]) -> None:
    params = PgBouncerParams(
        "node1", ("cms",), (PgBouncerUser("cms", Plain("app")), PgBouncerUser("hapair", ADMIN_PW)),
        "hapair", upstream=Endpoint("127.0.0.1", 18531), port=18540,
        config_path=f"{workdir}/pgbouncer.ini", userlist_path=f"{workdir}/userlist.txt")
    write_file(render_pgbouncer_config(params), owner="postgres")
    userlist = write_file(render_userlist(params), owner="postgres")
    assert oct(userlist.stat().st_mode & 0o777) == "0o600"
    procs.spawn(pgbouncer_argv(params), "pgbouncer", user="postgres")
    passfile = workdir / "admin.pgpass"
    passfile.write_text(f"127.0.0.1:18540:pgbouncer:hapair:{ADMIN_PW.reveal()}\n")
    passfile.chmod(0o600)
    env = {"PATH": "/usr/bin:/bin", "PGPASSFILE": str(passfile)}

    def admin(statement: str) -> str:
        argv = admin_psql_argv(statement, "hapair", port=18540)
        assert ADMIN_PW.reveal() not in " ".join(argv)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=15,
                              check=True).stdout

    dbs = wait(lambda: parse_show_databases(admin("SHOW DATABASES")), 15, "pgbouncer admin")
    assert check_resumed(dbs, "cms").ok
    assert {d.name: (d.host, d.port) for d in dbs}["cms"] == ("127.0.0.1", 18531)
    admin(pause_sql("cms"))
    check = check_paused(parse_show_databases(admin("SHOW DATABASES")),
                         parse_show_pools(admin("SHOW POOLS")), "cms")
    assert check.reason == "pgbouncer cms paused; 0 client(s) waiting"
    admin(resume_sql("cms"))
    assert check_resumed(parse_show_databases(admin("SHOW DATABASES")), "cms").ok
