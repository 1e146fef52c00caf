"""The upgrade in compose form (workflows/upgrade_compose): the plan built from the recorded
original server, the exact commands its steps run, and the preflight's refusals. Nothing here
needs Docker: hosts are RecordingTransports answering as the original server did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose_fixtures import (
    COMPOSE_FILE,
    HOST_KEY,
    REMOTE_FILE,
    assert_no_secret,
    filled_draft,
    original_host_transport,
    recorded,
)
from plan_commands import DOCKER_HOST_TOOLS, run_every_step

from hapair.components.scram import scram_sha256_verifier
from hapair.compose.collect import discover_remote
from hapair.compose.draft import SshInfo, render_draft
from hapair.errors import StepFailed
from hapair.exec.recording import RecordingTransport, Reply, StoredFile
from hapair.inventory import parse_inventory
from hapair.plan.step import StepContext, StepKind
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade import steps_pg
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade_compose.prepare import PreparedCompose, prepare_compose
from hapair.workflows.upgrade_compose.steps_handover import KEEP_AUTH_FILES

SSH = SshInfo("10.0.0.11", "root", 22, "/root/.ssh/id_ed25519", HOST_KEY)
APP1 = ["docker", "compose", "-p", "idp-cms", "-f", REMOTE_FILE, "--env-file",
        "/opt/idp-cms/.env.node1"]
PAIR1 = ["docker", "compose", "-p", "idp-cms-hapair", "-f",
         "/opt/hapair/idp-cms/node1/docker-compose.hapair.yml"]
# Distinctive values for the inventory's secrets: none may reach argv, a description or a log.
INVENTORY_SECRETS = {"secrets/postgres_password": "Owner-Pw-51",
                     "secrets/postgres_superuser_password": "Owner-Pw-51",
                     "secrets/redis_password": "Redis-Pw-52"}

EXPECTED_STEPS = [
    ("node1", "compose.backup", StepKind.COMMAND),
    ("node1", "compose.files", StepKind.FILE),
    ("node2", "compose.files", StepKind.FILE),
    ("witness", "compose.files", StepKind.FILE),
    ("node2", "compose.project", StepKind.FILE),
    ("node1", "compose.images", StepKind.COMMAND),
    ("node2", "compose.images", StepKind.COMMAND),
    ("node2", "compose.volumes", StepKind.COMMAND),
    ("node2", "compose.app-created", StepKind.COMMAND),
    ("node1", "compose.etcd", StepKind.NEW_SERVICE),
    ("node2", "compose.etcd", StepKind.NEW_SERVICE),
    ("witness", "compose.etcd", StepKind.NEW_SERVICE),
    ("witness", "compose.etcd-quorum", StepKind.PROBE),
    ("node1", "postgres.replication-role", StepKind.SQL),
    ("node1", "postgres.slot-cap", StepKind.RELOAD),
    ("node1", "compose.sentinel", StepKind.NEW_SERVICE),
    ("node2", "compose.sentinel", StepKind.NEW_SERVICE),
    ("witness", "compose.sentinel", StepKind.NEW_SERVICE),
    ("node1", "compose.router", StepKind.NEW_SERVICE),
    ("node1", "compose.redis-handover", StepKind.RESTART),
    ("node1", "compose.patroni-handover", StepKind.RESTART),
    ("node1", "compose.app-repoint", StepKind.RECREATE),
    ("node2", "compose.patroni", StepKind.NEW_SERVICE),
    ("node2", "compose.redis", StepKind.NEW_SERVICE),
    ("node2", "compose.router", StepKind.NEW_SERVICE),
    ("node2", "compose.app", StepKind.NEW_SERVICE),
    ("node1", "compose.keepalived", StepKind.NEW_SERVICE),
    ("node2", "compose.keepalived", StepKind.NEW_SERVICE),
    ("node1", "patroni.durability", StepKind.RELOAD),
    ("node1", "verify.replication", StepKind.PROBE),
    ("node1", "verify.sentinel", StepKind.PROBE),
    ("witness", "etcd.leader", StepKind.COMMAND),
]


def _hosts() -> dict[str, RecordingTransport]:
    node1 = original_host_transport()
    node1.on(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=idp-cms",
              "--format", "{{.ID}}"], stdout=recorded("ps-ids.txt"))
    node1.files[REMOTE_FILE] = StoredFile(COMPOSE_FILE.read_bytes())
    node1.on_prefix(["docker", "volume", "inspect"], stdout="[{}]")
    # preflight: PostgreSQL runs and knows the owner's password; Redis answers PONG
    node1.on([*APP1, "ps", "-a", "--format", "json", "postgres"], stdout=recorded("ps.json"))
    verifier = scram_sha256_verifier(INVENTORY_SECRETS["secrets/postgres_password"])
    node1.on([*APP1, "exec", "-T", "-u", "postgres", "-e", "PGUSER=idp", "postgres", "psql",
              "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "idp_cms", "-At"], stdout=verifier)
    node1.on([*APP1, "exec", "-T", "redis", "redis-cli"], stdout="OK\nPONG\n")
    for prefix in (["sh", "-c"], APP1, PAIR1):  # the steps' own commands succeed
        node1.on_prefix(prefix, Reply(0))
    others = {}
    for name in ("node2", "witness"):
        t = RecordingTransport(name, default=Reply(0))
        t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
        t.on_prefix(["docker", "volume", "inspect"], returncode=1, stderr="no such volume")
        others[name] = t
    return {"node1": node1, **others}


def prepared(tmp_path: Path, hosts: dict[str, RecordingTransport] | None = None,
             *, real: bool = True) -> tuple[PreparedCompose, WorkflowContext]:
    hosts = hosts or _hosts()
    text, _ = render_draft(discover_remote(original_host_transport()), SSH)
    inv_text = filled_draft(text, tmp_path)
    for rel, value in INVENTORY_SECRETS.items():
        (tmp_path / rel).write_text(value + "\n")
    inv = parse_inventory(inv_text, base_dir=tmp_path)
    ctx = WorkflowContext(inv, dict(hosts))  # type: ignore[arg-type]
    return prepare_compose(ctx, UpgradeParams(inv, ctx.generated), real_secrets=real), ctx


def _secrets(ctx: WorkflowContext) -> list[str]:
    return [*INVENTORY_SECRETS.values(), *(s.reveal() for s in ctx.generated.existing())]


def _step(pc: PreparedCompose, host: str, name: str):  # -> Step
    return next(s for s in pc.plan.steps if s.id == f"upgrade/{host}/{name}")


def _run(pc: PreparedCompose, ctx: WorkflowContext, host: str, name: str) -> None:
    step = _step(pc, host, name)
    assert step.action is not None
    step.action.run(StepContext(host, ctx.transports))


def test_the_plan_follows_the_native_order_in_compose_form(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    assert [(s.host, s.id.split("/", 2)[2], s.kind) for s in pc.plan.steps] == EXPECTED_STEPS
    assert pc.preflight.refusals == []
    # every step that changes something can be taken back, but the backup and the images
    assert sorted(s.id for s in pc.plan.steps if s.undo is None and s.kind is not StepKind.PROBE
                  ) == sorted(["upgrade/node1/compose.backup", "upgrade/node1/compose.images",
                               "upgrade/node2/compose.images", "upgrade/node2/compose.project",
                               "upgrade/node1/postgres.replication-role",
                               "upgrade/node1/postgres.slot-cap",
                               "upgrade/node1/patroni.durability",
                               "upgrade/witness/etcd.leader"])
    shown = json.dumps(pc.plan.as_dict(ctx.redact))
    assert_no_secret(shown)
    for secret in _secrets(ctx):
        assert secret not in shown


def test_the_plan_preview_renders_with_placeholders_only(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path, real=False)
    assert len(pc.plan.steps) == len(EXPECTED_STEPS)
    for f in pc.upgrade.bundles["node1"].files:
        for secret in INVENTORY_SECRETS.values():
            assert secret not in f.content  # `plan` never renders a real secret


def test_backup_dumps_from_the_user_s_container_to_a_0600_file(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    _run(pc, ctx, "node1", "compose.backup")
    node1 = ctx.transports["node1"]
    argv = node1.commands[-1]  # type: ignore[attr-defined]
    assert argv[:2] == ("sh", "-c") and "umask 077" in argv[2]
    assert argv[3] == "/var/lib/hapair/backups/idp-cms-before-upgrade.dump"
    assert list(argv[4:]) == [*APP1, "exec", "-T", "-u", "postgres", "postgres", "pg_dump",
                              "-Fc", "-U", "idp", "-d", "idp_cms"]


def test_files_land_with_their_modes_and_secrets_only_in_0600_files(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    _run(pc, ctx, "node2", "compose.files")
    node2 = ctx.transports["node2"]
    writes = [c for c in node2.calls if c.kind == "write_file"]  # type: ignore[attr-defined]
    assert {c.path for c in writes} == {f.path for f in pc.upgrade.bundles["node2"].files}
    assert "/opt/hapair/idp-cms/node2/docker-compose.hapair.yml" in {c.path for c in writes}
    for c in writes:
        text = c.data.decode()
        if any(s in text for s in _secrets(ctx)):
            assert c.mode == 0o600, c.path


def test_replication_sql_runs_in_the_user_s_postgres_as_its_superuser(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    _run(pc, ctx, "node1", "postgres.replication-role")
    call = ctx.transports["node1"].calls[-1]  # type: ignore[attr-defined]
    assert list(call.argv) == [*APP1, "exec", "-T", "-u", "postgres", "-e", "PGUSER=idp",
                               "postgres", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                               "idp_cms", "-At"]
    sql = call.input.decode()
    assert "CREATE ROLE replicator WITH REPLICATION" in sql and "SCRAM-SHA-256$" in sql
    for secret in _secrets(ctx):
        assert secret not in sql  # a verifier, never the password


def test_redis_and_postgres_are_handed_over_stop_first(tmp_path: Path, monkeypatch) -> None:
    pc, ctx = prepared(tmp_path)
    import hapair.workflows.upgrade.steps_pg as steps_pg

    waited = []
    monkeypatch.setattr(steps_pg, "wait_primary", lambda url, t: waited.append(url))
    node1 = ctx.transports["node1"]
    before = len(node1.commands)  # type: ignore[attr-defined]
    _run(pc, ctx, "node1", "compose.redis-handover")
    _run(pc, ctx, "node1", "compose.patroni-handover")
    assert [c for c in node1.commands[before:] if "version" not in c] == [  # type: ignore[attr-defined]
        (*APP1, "stop", "-t", "60", "redis"),
        (*PAIR1, "up", "-d", "--no-deps", "hapair-redis"),
        # the original auth files kept for a rollback (Patroni replaces them), then the stop
        (*APP1, "exec", "-T", "-u", "postgres", "postgres", "sh", "-c", KEEP_AUTH_FILES, "sh",
         "/var/lib/postgresql/data/pgdata"),
        (*APP1, "stop", "-t", "60", "postgres"),
        (*PAIR1, "up", "-d", "--no-deps", "hapair-patroni"),
    ]
    assert waited == ["http://10.0.0.11:8008/primary"]


def test_app_repoint_keeps_the_original_and_recreates_only_default_services(
        tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    node1 = ctx.transports["node1"]
    before = len(node1.calls)  # type: ignore[attr-defined]
    _run(pc, ctx, "node1", "compose.app-repoint")
    calls = node1.calls[before:]  # type: ignore[attr-defined]
    writes = [(c.path, c.data.decode()) for c in calls if c.kind == "write_file"]
    edit = pc.upgrade.edits["node1"]
    assert writes == [(REMOTE_FILE + ".hapair-before", edit.before), (REMOTE_FILE, edit.after)]
    ups = [c.argv[len(APP1):] for c in calls if c.kind == "run" and c.argv[:4] == tuple(APP1[:4])]
    started = sorted(a[3] for a in ups if a[:3] == ("up", "-d", "--no-deps"))
    # the app re-pointed at the router, MinIO's port bound to the private address; the
    # retired (profiled) postgres and redis are not started again
    assert started == ["authoring", "celery-beat", "celery-worker", "minio"]


def test_node2_gets_empty_volumes_and_the_project_copied(tmp_path: Path) -> None:
    pc, ctx = prepared(tmp_path)
    node1, node2 = ctx.transports["node1"], ctx.transports["node2"]
    node1.on_prefix(["sh", "-c", 'tar -C "$0" -cf - "$@" . | base64 -w0'], stdout="UEFDSw==")
    node1.files["/opt/idp-cms/.env.node1"] = StoredFile(b"POSTGRES_PASSWORD=x\n")
    node2.on(["test", "-e", "/opt/idp-cms/.env.node2"], returncode=1)
    _run(pc, ctx, "node2", "compose.volumes")
    _run(pc, ctx, "node2", "compose.project")
    assert ("docker", "volume", "create", "idp-cms_pgdata") in node2.commands
    assert ("docker", "volume", "create", "idp-cms_redis_data") in node2.commands
    unpack = next(c for c in node2.calls if c.kind == "run" and "base64 -d" in " ".join(c.argv))
    assert unpack.input == b"UEFDSw==" and unpack.argv[-1] == "/opt/idp-cms"
    tar = next(c for c in node1.commands if c[:2] == ("sh", "-c") and "tar" in c[2])
    assert "--exclude=./.env*" in tar  # node1's env files never travel
    written = {c.path: c for c in node2.calls if c.kind == "write_file"}
    assert written[REMOTE_FILE].data.decode() == pc.upgrade.edits["node2"].after
    assert written["/opt/idp-cms/.env.node2"].mode == 0o600


def test_preflight_refuses_a_node2_volume_it_did_not_create(tmp_path: Path) -> None:
    hosts = _hosts()
    hosts["node2"].on(["docker", "volume", "inspect", "idp-cms_pgdata"], stdout="[{}]")
    pc, _ctx = prepared(tmp_path, hosts)
    assert [(r.code, r.host) for r in pc.preflight.refusals] == [("standby-has-data", "node2")]
    assert "idp-cms_pgdata already exists" in pc.preflight.refusals[0].reason


def test_preflight_refuses_when_a_host_has_no_compose(tmp_path: Path) -> None:
    hosts = _hosts()
    hosts["witness"].on(["docker", "compose", "version"], returncode=1, stderr="not found")
    hosts["witness"].on(["docker-compose", "version"], returncode=127, stderr="not found")
    pc, _ctx = prepared(tmp_path, hosts)
    assert [(r.code, r.host) for r in pc.preflight.refusals] == [("compose-cli", "witness")]


@pytest.mark.parametrize("stdout", ["", "OK\n"])
def test_preflight_refuses_a_redis_password_that_gets_no_pong(tmp_path: Path,
                                                               stdout: str) -> None:
    hosts = _hosts()
    hosts["node1"].on([*APP1, "exec", "-T", "redis", "redis-cli"], stdout=stdout)
    pc, _ctx = prepared(tmp_path, hosts)
    assert ("redis-password", "node1") in [(r.code, r.host) for r in pc.preflight.refusals]


def test_upgrade_refuses_compose_hosts_without_the_experimental_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hapair.cli.main import main

    text, _ = render_draft(discover_remote(original_host_transport()), SSH)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(filled_draft(text, tmp_path))
    with pytest.raises(SystemExit) as exc:  # refused before any host is contacted
        main(["upgrade", "-i", str(inv), "-y"])
    assert exc.value.code == 3
    assert "--experimental-compose" in capsys.readouterr().err


def test_plan_shows_the_compose_steps_after_the_preview(tmp_path: Path) -> None:
    from rich.console import Console

    from hapair.cli.upgrade import _plan_document, _render_compose_plan

    pc, ctx = prepared(tmp_path, real=False)
    doc = _plan_document(pc.upgrade.p, pc.plan, pc.preflight, ctx.redact)
    doc["compose"] = pc.preview.as_dict()
    console = Console(record=True, width=220)
    _render_compose_plan(doc, console)
    out = console.export_text()
    assert out.index("node2: project idp-cms-hapair") < out.index("compose.patroni-handover")
    assert "container authoring: recreate" in out
    assert "refused" not in out


def test_every_command_on_a_host_uses_only_tools_a_docker_host_has(tmp_path: Path,
                                                                   monkeypatch) -> None:
    def no_primary(*_a: object) -> None:
        raise StepFailed("the fake Patroni never answers /primary")

    monkeypatch.setattr(steps_pg, "wait_primary", no_primary)  # else a 120 s wait
    pc, ctx = prepared(tmp_path)
    used = run_every_step(pc.plan, ctx.transports)  # type: ignore[arg-type]
    assert "docker" in used and used - DOCKER_HOST_TOOLS == set()
