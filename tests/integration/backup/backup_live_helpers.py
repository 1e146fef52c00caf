"""Real PostgreSQL 15 servers for the backup tests: started as `postgres` in a temp dir, on
loopback ports of this suite's range (127.0.0.1:18700-18799), stopped by the pid we started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from ruamel.yaml import YAML

from hapair.cli.backup import backup, restore
from hapair.components.pgdump import PgConn
from hapair.errors import HapairError, Refused
from hapair.exec.local import LocalTransport
from hapair.exec.recording import RecordingTransport, Reply
from hapair.inventory import Inventory
from hapair.workflows.backup import Node, Pair, Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "inventory.yaml"


def as_postgres(argv: Sequence[str], stdin: str | None = None, timeout: float = 60,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), input=stdin, text=True, capture_output=True, timeout=timeout,
                       user="postgres", group="postgres", extra_groups=[], cwd="/")
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {r.returncode}: {r.stderr[-2000:]}")
    return r


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Server:
    name: str
    data: Path
    port: int
    socket_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=30"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, user="postgres",
                group="postgres", extra_groups=[], start_new_session=True,
            )
        wait_for(f"{self.name} to accept connections", self._ready)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(self.socket_dir),
                            "-p", str(self.port)], capture_output=True, timeout=10)
        return r.returncode == 0

    def stop(self) -> None:
        """SIGINT = fast shutdown, to the postmaster we started; SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def sql(self, text: str, database: str = "postgres") -> str:
        r = as_postgres([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                         "-h", str(self.socket_dir), "-p", str(self.port), "-d", database,
                         "-f", "-"], stdin=text)
        return r.stdout.strip()


def make_root(prefix: str) -> Path:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    shutil.chown(root, "postgres", "postgres")
    return root


def initdb(data: Path, superuser_password: str) -> None:
    pwfile = data.parent / "pw.tmp"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(superuser_password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    try:
        as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                     "--locale=C", "--auth-local=peer", "--auth-host=scram-sha-256",
                     f"--pwfile={pwfile}", "--no-sync"], timeout=120)
    finally:
        pwfile.unlink()


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_inventory(root: Path, *, superuser_password: str, port: int) -> Path:
    """examples/inventory.yaml on loopback, with its key and 0600 secret files in `root`."""
    yaml = YAML(typ="safe", pure=True)
    data: Any = yaml.load(EXAMPLE.read_text())
    d = root / "inventory"
    values = {
        "lab-ssh/id_ed25519": "not used: the tests reach the nodes locally\n",
        "secrets/postgres_password": secrets.token_urlsafe(12),
        "secrets/postgres_superuser_password": superuser_password,
        "secrets/redis_password": secrets.token_urlsafe(12),
        "secrets/s3_access_key": "access",
        "secrets/s3_secret_key": secrets.token_urlsafe(12),
    }
    for rel, text in values.items():
        write_private(d / rel, text)
    for host, address in zip(data["hosts"], ["127.0.0.1", "127.0.0.2", "127.0.0.3"], strict=True):
        host["address"] = address
    data["front_door"] = {"kind": "static", "address": "127.0.0.10", "port": 80}
    data["services"]["postgres"]["port"] = port
    path = d / "inventory.yaml"
    with open(path, "w") as f:
        yaml.dump(data, f)
    return path


def run_cli(args: list[str], obj: dict[str, Any]) -> int:
    """The real click commands, errors mapped to exit codes as hapair.cli.main does."""
    root = click.Group("hapair")
    root.add_command(backup)
    root.add_command(restore)
    try:
        rc = root.main(args=args, prog_name="hapair", standalone_mode=False, obj=obj)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except HapairError as exc:
        print(f"hapair: {exc}", file=sys.stderr)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


PRIMARY_PORT = 18701
STANDBY_PORT = 18702

DATA_SQL = """
CREATE ROLE cms LOGIN;
CREATE DATABASE cms OWNER cms;
"""

# Owned by the app role, as in production; odd names and a partitioned table on purpose.
TABLES_SQL = """
SET ROLE cms;
CREATE TABLE articles (id serial PRIMARY KEY, title text NOT NULL, body text);
INSERT INTO articles (title, body) SELECT 'title ' || g, repeat('x', g % 50)
  FROM generate_series(1, 500) g;
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Mixed|Name" (v text);
INSERT INTO "Odd Schema"."Mixed|Name" VALUES ('a'), (E'line\\nbreak'), ('c:d\\e');
CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT g, DATE '2024-06-01' + g FROM generate_series(1, 300) g;
CREATE UNLOGGED TABLE cache_entries (k text, v text);
INSERT INTO cache_entries VALUES ('k', 'v');
CREATE MATERIALIZED VIEW article_count AS SELECT count(*) AS n FROM articles;
CREATE TABLE empty_table (id int);
"""

EXPECTED_COUNTS = {
    "public.articles": 500,
    "Odd Schema.Mixed|Name": 3,
    "public.events_2024": 213,  # 2024-06-02 .. 2024-12-31
    "public.events_2025": 87,
    "public.empty_table": 0,
}


@dataclass
class Live:
    root: Path
    primary: Server
    standby: Server
    inventory: Path
    superuser_password: str

    def caught_up(self) -> None:
        lsn = self.primary.sql("SELECT pg_current_wal_lsn()")
        wait_for("the standby to replay " + lsn, lambda: self.standby.sql(
            f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == "t")


def down(name: str) -> RecordingTransport:
    """A node that cannot be reached (the second server before the upgrade)."""
    return RecordingTransport(name, default=Reply(raises=Refused(f"{name}: unreachable")))


PairFactory = Callable[[Inventory, Settings], Pair]


def make_factory(
    live: Live,
    dirs: dict[str, str],
    *,
    node2: str = "standby",
    bin_dir: Path = PG_BIN,
    database: str = "cms",
    patroni_url: str | None = None,
) -> PairFactory:
    """node1 always the real primary; node2 the real standby, or 'down'."""

    def factory(inv: Inventory, _settings: Settings) -> Pair:
        sock = str(live.primary.socket_dir)
        n1 = Node("node1", LocalTransport("node1"), "127.0.0.1",
                  PgConn(str(bin_dir), PRIMARY_PORT, sock), backup_dir=dirs["node1"],
                  patroni_url=patroni_url, audit_log=dirs["audit1"])
        t2 = LocalTransport("node2") if node2 == "standby" else down("node2")
        n2 = Node("node2", t2, "127.0.0.1", PgConn(str(bin_dir), STANDBY_PORT, sock),
                  backup_dir=dirs["node2"], patroni_url=None, audit_log=dirs["audit2"])
        pg = inv.services.postgres
        return Pair(inv.cluster, (n1, n2), database, pg.owner,
                    superuser_password=pg.superuser_password,
                    backend_env_file=inv.services.backend.env_file)

    return factory
