"""`hapair backup` on compose hosts: the tools run in hapair-patroni (`docker compose … exec -T`),
as the OS user postgres connecting as the image's superuser (the inventory's owner); the
directory is the host's, mounted there; the host keeps the audit log and the REST probe.
Exact argument lists as each host receives them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from backup_fakes import DUMP_OUT, ID, NOW, PASSWORD, run_cli
from compose_fakes import (
    BASE,
    BIN,
    OWNER,
    SOCK,
    box,
    compose_host,
    compose_pair,
    curl,
    never_in_argv,
    pg_args,
    psql,
    write_compose_inventory,
    written,
)

from hapair.components.common import Credential, Plain
from hapair.compose.generate import check_bundle, generate
from hapair.compose.generate_configs import (
    BACKUP_DIR,
    HaSecrets,
    HostSpec,
    PgFacts,
    patroni_config,
)
from hapair.compose.yamlio import load_plain
from hapair.errors import Refused, StepFailed, UsageError
from hapair.exec.recording import RecordingTransport, Reply, StoredFile
from hapair.inventory import Inventory
from hapair.workflows.backup import (
    BackupRequest,
    Pair,
    Settings,
    list_all,
    pair_from_inventory,
    take_backup,
)
from hapair.workflows.backup.containers import ContainerShell
from hapair.workflows.backup.model import FORMAT
from hapair.workflows.backup.nodes import DEFAULT_BACKUP_DIR
from hapair.workflows.backup.restore import restore_backup
from hapair.workflows.backup.verify import verify_backup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compose"))
from compose_fixtures import generate_params  # noqa: E402

PARTIAL = f"{BASE}/{ID}.partial"
FINAL = f"{BASE}/{ID}"
AUDIT = [["mkdir", "-p", "--", "/var/log/hapair"], ["tee", "-a", "--", "/var/log/hapair/audit.log"]]
WRITE = "<write_file script>"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    return write_compose_inventory(tmp_path)


def masked(t: RecordingTransport) -> list[list[str]]:
    """The host's commands, the (long, fixed) write_file script replaced by a marker."""
    out = []
    for argv in t.commands:
        a = list(argv)
        if "sh" in a and a[a.index("sh") + 1:a.index("sh") + 2] == ["-c"]:
            a[a.index("sh") + 2] = WRITE
        out.append(a)
    return out


def script_logical(t: RecordingTransport) -> None:
    status = f"{PARTIAL}/.pg_dump.status"
    dump, glob = f"{PARTIAL}/cms.dump", f"{PARTIAL}/globals.sql"
    t.on(box("node2", psql(db="cms"), user="postgres"), stdout=DUMP_OUT)
    t.on(box("node2", ["cat", status]), stdout="0\n")
    t.on(box("node2", ["sha256sum", "--", dump, glob]),
         stdout=f"{'a' * 64}  {dump}\n{'b' * 64}  {glob}\n")
    t.on(box("node2", ["stat", "-c", "%s %n", "--", dump, glob]),
         stdout=f"1234 {dump}\n56 {glob}\n")
    t.on(box("node2", [f"{BIN}/pg_dump", "--version"]), stdout="pg_dump (PostgreSQL) 17.6\n")


# --- the pair -----------------------------------------------------------------------------------


def test_compose_nodes_run_their_tools_in_hapair_patroni(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    pair = compose_pair(inv, t1, t2)
    assert pair.superuser == OWNER  # the official image has no `postgres` role
    n1 = pair.node("node1")
    assert isinstance(n1.transport, ContainerShell) and n1.host_transport is t1
    assert (n1.container, n1.address, n1.patroni_url) == (
        "hapair-patroni", "10.99.0.11", "http://10.99.0.11:8008")
    assert n1.pg.args() == pg_args() and n1.backup_dir == BASE
    assert t1.calls == [] and t2.calls == []  # nothing runs until a command needs a node
    pair.node("node2").close()
    assert t2.closed and not t1.closed


def test_the_generated_mount_is_the_default_backup_directory() -> None:
    assert BACKUP_DIR == DEFAULT_BACKUP_DIR


def test_another_backup_dir_is_a_usage_error_on_compose(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    with pytest.raises(UsageError, match="on compose hosts backups go to /var/lib/hapair/backups"):
        compose_pair(inv, t1, t2, Settings(backup_dir="/srv/backups"))


def test_nodes_on_two_layouts_are_refused(tmp_path: Path) -> None:
    path = write_compose_inventory(tmp_path, native=("node2",))
    with pytest.raises(Refused, match="node1 on compose, node2 on supervisor"):
        compose_pair(path, compose_host("node1"), RecordingTransport("node2"))


# --- take -----------------------------------------------------------------------------------


def test_logical_backup_on_the_standby_s_container(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    script_logical(t2)
    doc = take_backup(compose_pair(inv, t1, t2), BackupRequest(), now=lambda: NOW)
    assert doc["ok"] and doc["node"] == "node2" and doc["runs_in"] == "hapair-patroni"
    assert doc["path"] == FINAL
    assert t1.commands == [tuple(curl("node1"))]  # REST probe from the host; nothing else
    status, dump, glob = (f"{PARTIAL}/{n}" for n in (".pg_dump.status", "cms.dump",
                                                     "globals.sql"))
    pg = pg_args()
    assert masked(t2) == [
        ["docker", "compose", "version"],
        box("node2", ["id", "-u", "postgres"]),
        ["install", "-d", "-m", "0700", "-o", "999", "--", BASE],  # on the host
        ["stat", "-c", "%d:%i", "--", BASE],
        box("node2", ["stat", "-c", "%d:%i", "--", BASE]),
        box("node2", ["mkdir", "-m", "0700", "--", PARTIAL], user="postgres"),
        box("node2", psql(db="cms"), user="postgres"),
        box("node2", ["cat", status]),
        box("node2", ["rm", "-f", "--", status]),
        box("node2", [f"{BIN}/pg_dumpall", *pg, "--globals-only", "--no-role-passwords", "-f",
                      glob], user="postgres"),
        box("node2", [f"{BIN}/pg_restore", "-l", "-f", "/dev/null", dump], user="postgres"),
        box("node2", ["chmod", "0600", "--", dump, glob]),
        box("node2", [f"{BIN}/pg_dump", "--version"]),
        box("node2", ["sha256sum", "--", dump, glob]),
        box("node2", ["stat", "-c", "%s %n", "--", dump, glob]),
        box("node2", ["sh", "-c", WRITE, "sh", f"{PARTIAL}/manifest.json", "600", "postgres"]),
        box("node2", ["mv", "-T", "--", PARTIAL, FINAL], user="postgres"),
        *AUDIT,  # on the host
    ]
    script = t2.calls[6].input or b""
    assert f"{BIN}/pg_dump -h {SOCK} -p 5432 -U cms -w -d cms -Fc".encode() in script
    assert b"pg_export_snapshot()" in script
    manifest = json.loads(written(t2, f"{PARTIAL}/manifest.json").input or b"")
    assert manifest["format"] == FORMAT and manifest["source"]["role"] == "standby"
    assert manifest["tools"]["pg_dump"] == "pg_dump (PostgreSQL) 17.6"
    assert b"step=backup/node2/logical\tresult=ok" in (t2.calls[-1].input or b"")


def test_physical_backup_connects_as_the_owner(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    bid = "20250301T021500Z-physical"
    out = f"{BASE}/{bid}.partial/pgdata"
    t2.on(box("node2", psql(), user="postgres"), stdout=json.dumps(
        {"in_recovery": True, "server_version": "17.6", "server_version_num": 170006}) + "\n")
    t2.on(box("node2", ["find", out, "-mindepth", "1", "-maxdepth", "1", "-type", "f", "-printf",
                        "%f\\n"]), stdout="backup_manifest\nbase.tar.gz\npg_wal.tar.gz\n")
    t2.on(box("node2", ["tail", "-c", "4096", f"{out}/backup_manifest"]), stdout=(
        '"WAL-Ranges": [{"Timeline": 2, "Start-LSN": "0/5000028", "End-LSN": "0/5000100"}]}'))
    files = ("backup_manifest", "base.tar.gz", "pg_wal.tar.gz")
    t2.on(box("node2", ["sha256sum", "--", *(f"{out}/{f}" for f in files)]),
          stdout="".join(f"{'c' * 64}  {out}/{f}\n" for f in files))
    t2.on(box("node2", ["stat", "-c", "%s %n", "--", *(f"{out}/{f}" for f in files)]),
          stdout="".join(f"10 {out}/{f}\n" for f in files))
    doc = take_backup(compose_pair(inv, t1, t2), BackupRequest(kind="physical"), now=lambda: NOW)
    assert doc["ok"] and doc["id"] == bid
    assert box("node2", [f"{BIN}/pg_basebackup", *pg_args(), "-D", out, "-Ft", "-z", "-X",
                         "stream", "--checkpoint=fast", "-l", f"hapair {bid}"],
               user="postgres") in masked(t2)


def test_a_refused_basebackup_names_the_compose_pg_hba_line(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    t2.on(box("node2", psql(), user="postgres"), stdout=json.dumps({"in_recovery": True}) + "\n")
    t2.on_prefix(box("node2", [f"{BIN}/pg_basebackup"], user="postgres"), returncode=1, stderr=(
        'pg_basebackup: error: FATAL:  no pg_hba.conf entry for replication connection from '
        'host "[local]", user "cms", no encryption\n'))
    with pytest.raises(StepFailed, match="`local replication cms peer map=hapair`"):
        take_backup(compose_pair(inv, t1, t2), BackupRequest(kind="physical"), now=lambda: NOW)
    removed = box("node2", ["rm", "-rf", "--", f"{BASE}/20250301T021500Z-physical.partial"])
    assert removed in masked(t2)


def test_a_container_without_the_mount_is_refused_before_writing(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    t2.on(box("node2", ["stat", "-c", "%d:%i", "--", BASE]), returncode=1,
          stderr=f"stat: cannot statx '{BASE}': No such file or directory\n")
    with pytest.raises(Refused, match=r"is not the host's /var/lib/hapair/backups; nothing was "
                                      r"written\. A pair generated before hapair mounted it"):
        take_backup(compose_pair(inv, t1, t2), BackupRequest(), now=lambda: NOW)
    assert not any("mkdir" in c for c in t2.commands)


def test_dry_run_runs_nothing_in_the_container(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    doc = take_backup(compose_pair(inv, t1, t2), BackupRequest(dry_run=True), now=lambda: NOW)
    assert doc["runs_in"] == "hapair-patroni" and doc["node"] == "node2"
    assert doc["commands"][0][:5] == [f"{BIN}/pg_dump", "-h", SOCK, "-p", "5432"]
    assert t2.commands == [] and t1.commands == [tuple(curl("node1"))]


# --- list, verify, restore -----------------------------------------------------------------------

MANIFEST = {"format": FORMAT, "id": ID, "kind": "logical", "cluster": "cms",
            "source": {"node": "node2", "role": "standby"}, "postgres": {},
            "database": {"name": "cms", "owner": "cms", "encoding": "UTF8",
                         "collate": "C.UTF-8", "ctype": "C.UTF-8"},
            "files": [{"name": "cms.dump", "bytes": 3, "sha256": "e" * 64}],
            "tables": [{"schema": "public", "table": "articles", "rows": 500}],
            "started_at": "", "finished_at": "", "tools": {}}
FIND = ["find", BASE, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"]


def holder_with_backup(t: RecordingTransport, host: str = "node2") -> None:
    """A backup in the host's directory (listed there), checksummed in the container."""
    # the pre-upgrade dump is a file (find -type d never prints it); a directory of that name
    # would not be ours either
    t.on(FIND, stdout=f"{ID}\ncms-before-upgrade.dump\n")
    t.files[f"{FINAL}/manifest.json"] = StoredFile(json.dumps(MANIFEST).encode(), 0o600, "999")
    t.on(box(host, ["sha256sum", "--", f"{FINAL}/cms.dump"]),
         stdout=f"{'e' * 64}  {FINAL}/cms.dump\n")


def test_list_reads_the_hosts_directories_not_the_containers(inv: Path) -> None:
    """Seen on engines: node1's directory is still the upgrade's (root, 0700) until hapair
    takes a backup there, and the container's postgres cannot read it. The host can; it is
    the same directory."""
    t1, t2 = compose_host("node1"), compose_host("node2")
    holder_with_backup(t2)
    t1.on(["test", "-d", BASE], returncode=1)
    entries, warnings = list_all(compose_pair(inv, t1, t2), lambda _l: None)
    assert warnings == [] and [(e.node, e.id, e.usable) for e in entries] == [("node2", ID, True)]
    assert masked(t2) == [["test", "-d", BASE], FIND]
    assert [c.path for c in t2.calls if c.kind == "read_file"] == [f"{FINAL}/manifest.json"]
    assert masked(t1) == [["test", "-d", BASE]]


def test_list_warns_about_an_unreachable_node(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    holder_with_backup(t2)
    t1.on(["test", "-d", BASE], Reply(raises=Refused("node1: unreachable")))
    entries, warnings = list_all(compose_pair(inv, t1, t2), lambda _l: None)
    assert warnings == ["node1: backups not listed: node1: unreachable"]
    assert [e.id for e in entries] == [ID]


def counts(t: RecordingTransport, db: str, rows: int) -> None:
    facts = json.dumps({"in_recovery": False, "database": db})
    t.on(box("node1", psql(db=db), user="postgres"),
         stdout=facts + "\n" + json.dumps({"schema": "public", "table": "articles",
                                           "rows": rows}) + "\n")


def test_restore_from_the_standby_into_a_new_database_on_the_primary(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    holder_with_backup(t2)
    t1.on(box("node1", psql(name="cms_restored"), user="postgres"), stdout="0\n")
    counts(t1, "cms_restored", 500)
    doc = restore_backup(compose_pair(inv, t1, t2), ID, "cms_restored", confirm=lambda q: True)
    assert doc["ok"] and (doc["from_node"], doc["node"]) == ("node2", "node1")
    assert "in hapair-patroni on node1: psql -U cms -d cms_restored" in doc["next_steps"][0]
    create = [c for c in t1.calls if b"CREATE DATABASE" in (c.input or b"")]
    assert [list(c.argv) for c in create] == [box("node1", psql(
        collate="C.UTF-8", ctype="C.UTF-8", encoding="UTF8", name="cms_restored", owner="cms"),
        user="postgres")]
    # pg_restore in node2's container, to the primary's private address as the superuser
    # (the owner), its password in a 0600 passfile in the backup directory, then removed
    restore = next(c for c in t2.calls if f"{BIN}/pg_restore" in c.argv and "-d" in c.argv)
    passfile = next(a for a in restore.argv if a.startswith("PGPASSFILE=")).split("=", 1)[1]
    assert passfile.startswith(f"{BASE}/.pgpass-")
    assert list(restore.argv) == box("node2", [
        f"{BIN}/pg_restore", *pg_args("10.99.0.11"), "-d", "cms_restored", "--exit-on-error",
        f"{FINAL}/cms.dump"], user="postgres", env={"PGPASSFILE": passfile})
    write = written(t2, passfile)
    assert write.argv[-2:] == ("600", "postgres")
    assert (write.input or b"").decode().endswith(f":{OWNER}:pw\\:with\\\\odd-chars\n")
    assert box("node2", ["rm", "-f", "--", passfile]) in masked(t2)
    never_in_argv(PASSWORD, t1, t2)
    assert b"step=restore/node1/cms_restored\tresult=ok" in (t1.calls[-1].input or b"")
    assert [list(c) for c in t1.commands[-2:]] == AUDIT  # the audit line on the host


def test_restore_never_writes_the_live_database(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    with pytest.raises(Refused, match="--into cms is the live database"):
        restore_backup(compose_pair(inv, t1, t2), ID, "cms", confirm=lambda q: True)
    assert t1.calls == [] and t2.calls == []


def test_verify_restores_into_a_scratch_database_and_records_the_verdict(inv: Path) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    holder_with_backup(t2)
    scratch = "hapair_verify_20250301t021500z_logical"
    counts(t1, scratch, 500)
    doc = verify_backup(compose_pair(inv, t1, t2), ID, now=lambda: NOW)
    assert doc["ok"] and doc["verification"]["restored_on"] == "node1"
    ddl = [(c.input or b"").split(b" ")[0] for c in t1.calls if b"DATABASE" in (c.input or b"")]
    assert ddl == [b"DROP", b"CREATE", b"DROP"]
    saved = json.loads(written(t2, f"{FINAL}/manifest.json").input or b"")
    assert saved["verification"]["result"] == "passed"
    never_in_argv(PASSWORD, t1, t2)


# --- the generated pieces it relies on -------------------------------------------------------


def test_generated_pg_hba_lets_postgres_replicate_over_the_socket() -> None:
    secrets = HaSecrets(Credential("cms", Plain("s")), Credential("replicator", Plain("r")),
                        Plain("x"), Plain("y"), Plain("z"))
    n1, n2 = HostSpec("node1", "10.0.0.11"), HostSpec("node2", "10.0.0.12")
    pg = PgFacts(17, "/var/lib/postgresql/data/pgdata", BIN, "cms", "cms", ("172.28.0.0/16",))
    conf = load_plain(patroni_config("cms", n1, (n1, n2), (n1, n2), pg, secrets, "sync"))
    assert conf["postgresql"]["pg_hba"][:2] == ["local all cms peer map=hapair",
                                                "local replication cms peer map=hapair"]
    assert conf["postgresql"]["pg_ident"] == ["hapair postgres cms"]


def test_hapair_patroni_mounts_the_host_s_backup_directory() -> None:
    node1, node2, witness = generate(generate_params())
    for bundle in (node1, node2):
        volumes = bundle.compose["services"]["hapair-patroni"]["volumes"]
        assert f"{BASE}:{BASE}" in volumes
        assert check_bundle(bundle) == []
    assert BASE not in witness.text


# --- the CLI ------------------------------------------------------------------------------------


def _obj(t1: RecordingTransport, t2: RecordingTransport) -> dict[str, object]:
    hosts = {"node1": t1, "node2": t2}

    def factory(inv: Inventory, settings: Settings) -> Pair:
        return pair_from_inventory(inv, settings, lambda _i, h: hosts[h.name])

    return {"backup_pair": factory}


def test_cli_list_as_json_closes_both_hosts(inv: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    holder_with_backup(t2)
    rc = run_cli(["backup", "list", "-i", str(inv), "-o", "json"], _obj(t1, t2))
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(b["id"], b["node"], b["path"]) for b in doc["backups"]] == [(ID, "node2", FINAL)]
    assert t1.closed and t2.closed


def test_cli_refuses_another_backup_dir_on_compose(inv: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    t1, t2 = compose_host("node1"), compose_host("node2")
    rc = run_cli(["backup", "-i", str(inv), "--backup-dir", "/srv/b", "-o", "json"], _obj(t1, t2))
    assert rc == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2
    assert t1.calls == [] and t2.calls == []
