"""A pair of RecordingTransports scripted like a primary (node1) and a streaming standby
(node2), for workflow and CLI tests that need no real server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hapair.components.pgdump import PgConn
from hapair.exec.recording import RecordingTransport, Reply
from hapair.workflows.backup import Node, Pair

BIN = "/usr/lib/postgresql/15/bin"
SOCK = "/var/run/postgresql"
BASE = "/var/lib/hapair/backups"
NOW = datetime(2025, 3, 1, 2, 15, 0, tzinfo=UTC)
ID = "20250301T021500Z-logical"
PASSWORD = "pw:with\\odd-chars"


class Pw:
    def reveal(self) -> str:
        return PASSWORD


def psql(port: int = 5432, db: str = "postgres", **variables: str) -> list[str]:
    argv = [f"{BIN}/psql", "-h", SOCK, "-p", str(port), "-U", "postgres", "-w", "-d", db,
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for k, v in sorted(variables.items()):
        argv += ["-v", f"{k}={v}"]
    return [*argv, "-f", "-"]


def probe(in_recovery: bool, lsn: str = "0/3000000", receiver: str | None = "streaming") -> str:
    return json.dumps({"in_recovery": in_recovery, "lsn": lsn,
                       "receiver": receiver if in_recovery else None,
                       "server_version": "15.14", "server_version_num": 150014})


FACTS = {"in_recovery": True, "server_version": "15.14", "server_version_num": 150014,
         "database": "cms", "owner": "cms", "encoding": "UTF8", "collate": "C.UTF-8",
         "ctype": "C.UTF-8", "snapshot": "00000003-0000001B-1"}
DUMP_OUT = "\n".join([
    json.dumps(FACTS),
    json.dumps({"schema": "public", "table": "articles", "rows": 500}),
    json.dumps({"schema": "public", "table": "sessions", "rows": 7}),
]) + "\n"


def transports(standby: bool = True) -> tuple[RecordingTransport, RecordingTransport]:
    t1 = RecordingTransport("node1")
    t2 = RecordingTransport("node2")
    t1.on(psql(), stdout=probe(False) + "\n")
    if standby:
        t2.on(psql(), stdout=probe(True) + "\n")
    else:
        t2.on(psql(), returncode=2, stderr="psql: error: connection to server failed\n")
    return t1, t2


def script_logical(t: RecordingTransport, backup_dir: str = BASE, backup_id: str = ID) -> str:
    """Replies of a successful logical backup in `backup_dir` on `t`; returns the partial dir."""
    partial = f"{backup_dir}/{backup_id}.partial"
    t.on(psql(db="cms"), stdout=DUMP_OUT)
    t.files[f"{partial}/.pg_dump.status"] = _stored(b"0\n")
    dump, glob = f"{partial}/cms.dump", f"{partial}/globals.sql"
    t.on(["sha256sum", "--", dump, glob], stdout=f"{'a' * 64}  {dump}\n{'b' * 64}  {glob}\n")
    t.on(["stat", "-c", "%s %n", "--", dump, glob], stdout=f"1234 {dump}\n56 {glob}\n")
    t.on([f"{BIN}/pg_dump", "--version"], stdout="pg_dump (PostgreSQL) 15.14\n")
    return partial


def _stored(data: bytes):  # noqa: ANN202 (RecordingTransport's own type)
    from hapair.exec.recording import StoredFile

    return StoredFile(data, 0o600, "postgres")


def make_pair(t1: RecordingTransport, t2: RecordingTransport, *, password: bool = True) -> Pair:
    n1 = Node("node1", t1, "10.99.0.11", PgConn(BIN, 5432, SOCK))
    n2 = Node("node2", t2, "10.99.0.12", PgConn(BIN, 5432, SOCK))
    return Pair("cms", (n1, n2), "cms", "cms", superuser_password=Pw() if password else None,
                backend_env_file="/opt/cms/backend.env")


def failing(stderr: str, returncode: int = 1) -> Reply:
    return Reply(returncode=returncode, stderr=stderr)


def write_inventory(root: Path) -> Path:
    """examples/inventory.yaml with its key and 0600 secret files under `root`."""
    import shutil

    example = Path(__file__).resolve().parents[3] / "examples" / "inventory.yaml"
    shutil.copy(example, root / "inventory.yaml")
    for rel in ("lab-ssh/id_ed25519", "secrets/postgres_password",
                "secrets/postgres_superuser_password", "secrets/redis_password",
                "secrets/s3_access_key", "secrets/s3_secret_key"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PASSWORD if "superuser" in rel else "value\n")
        path.chmod(0o600)
    return root / "inventory.yaml"


def run_cli(args: list[str], obj: dict[str, object]) -> int:
    """The real click commands, errors mapped to exit codes as hapair.cli.main does."""
    import sys

    import click

    from hapair.cli.backup import backup, restore
    from hapair.errors import HapairError

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
