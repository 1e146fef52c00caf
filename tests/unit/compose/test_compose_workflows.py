"""Workflows on an inventory of compose hosts: the runtime and tool shell each host gets, the
failover drill's stops through both projects, and the workflows whose steps are native-only
refusing before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose_fixtures import (
    COMPOSE_FILE,
    ENV_FILE,
    HOST_KEY,
    REMOTE_FILE,
    assert_no_secret,
    filled_draft,
    original_host_transport,
    recorded,
)
from rich.console import Console
from ruamel.yaml import YAML

from hapair.cli.compose_plan import render_compose
from hapair.components.patroni.probe import Member
from hapair.compose.collect import discover_offline, discover_remote
from hapair.compose.draft import SshInfo, render_draft
from hapair.compose.generate_configs import HostSpec, etcd_config
from hapair.compose.host_runtime import ComposeHostRuntime, ContainerTransport
from hapair.errors import Refused, StepFailed
from hapair.exec.recording import RecordingTransport, Reply, StoredFile
from hapair.exec.with_env import WithEnv
from hapair.inventory import Inventory, parse_inventory
from hapair.workflows.compose_preview import compose_preview
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops import manual_failover
from hapair.workflows.ops import migrate as migrate_mod
from hapair.workflows.ops.etcd_files import member_files
from hapair.workflows.ops.etcd_recover import force_one_member
from hapair.workflows.ops.faults import RuntimeInjector
from hapair.workflows.ops.manual_failover import PG_STATE_SQL, fence
from hapair.workflows.ops.singletons import follow_primary, stop_on_standby
from hapair.workflows.rollback.preflight import run_preflight as rollback_preflight
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.preflight import run_preflight as upgrade_preflight

SSH = SshInfo("10.0.0.11", "root", 22, "/root/.ssh/id_ed25519", HOST_KEY)
APP = ["docker", "compose", "-p", "idp-cms", "-f", str(COMPOSE_FILE), "--env-file",
       str(ENV_FILE)]
PAIR = ["docker", "compose", "-p", "idp-cms-hapair", "-f",
        "/opt/hapair/idp-cms/node1/docker-compose.hapair.yml"]


def compose_inventory(base: Path, edit: tuple[str, str] | None = None) -> Inventory:
    text, _ = render_draft(discover_offline([COMPOSE_FILE], [ENV_FILE]))
    if edit:
        text = text.replace(*edit)
    return parse_inventory(filled_draft(text, base), base_dir=base)


def context(inv: Inventory) -> WorkflowContext:
    transports = {}
    for h in inv.hosts:
        t = RecordingTransport(h.name, default=Reply(0))
        t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
        transports[h.name] = t
    return WorkflowContext(inv, transports)  # type: ignore[arg-type]


def ran(ctx: WorkflowContext) -> list[tuple[str, ...]]:
    return [c for t in ctx.transports.values() for c in t.commands]  # type: ignore[attr-defined]


def test_each_compose_host_gets_the_compose_runtime_and_container_shells(
        tmp_path: Path) -> None:
    ctx = context(compose_inventory(tmp_path))
    rt = ctx.runtime("node1")
    assert isinstance(rt, ComposeHostRuntime) and ctx.runtime("node1") is rt  # one per host
    shell = ctx.shell("node1", "etcd")
    assert isinstance(shell, ContainerTransport) and shell.service == "hapair-etcd"
    # psql and pg_* tools connect as the image's superuser (it has no `postgres` role)
    pg = ctx.shell("node1", "patroni")
    assert isinstance(pg, WithEnv) and pg.env == {"PGUSER": "idp", "PGDATABASE": "postgres"}
    assert isinstance(pg.inner, ContainerTransport) and pg.inner.service == "hapair-patroni"


def test_the_drill_stops_the_primary_s_services_in_both_projects(tmp_path: Path) -> None:
    ctx = context(compose_inventory(tmp_path))
    RuntimeInjector(ctx).inject("node1")
    stops = [c for c in ran(ctx) if "stop" in c]
    assert stops == [
        (*PAIR, "stop", "-t", "60", "hapair-keepalived"),
        (*APP, "stop", "-t", "60", "nginx"),
        (*PAIR, "stop", "-t", "120", "hapair-patroni"),
        (*PAIR, "stop", "-t", "60", "hapair-sentinel"),
        (*PAIR, "stop", "-t", "60", "hapair-redis"),
        (*PAIR, "stop", "-t", "60", "hapair-etcd"),
    ]


def test_the_drill_refuses_before_stopping_anything_when_a_role_is_unmapped(
        tmp_path: Path) -> None:
    inv = compose_inventory(tmp_path, ("\n        http_lb: nginx\n", "\n"))
    ctx = context(inv)
    with pytest.raises(Refused, match=r"no `compose.services.http_lb`"):
        RuntimeInjector(ctx).inject("node1")
    assert ran(ctx) == []


@pytest.mark.parametrize("workflow", ["upgrade", "rollback"])
def test_native_only_workflows_refuse_compose_hosts_untouched(tmp_path: Path,
                                                               workflow: str) -> None:
    inv = compose_inventory(tmp_path)
    ctx = context(inv)
    p = UpgradeParams(inv, ctx.generated)
    expected = (f"`hapair {workflow}` is not available on compose hosts "
                "(node1, node2, witness)")
    if workflow == "upgrade":
        pre = upgrade_preflight(ctx, p)
        assert [r.code for r in pre.refusals] == ["compose-runtime"]
        assert pre.refusals[0].reason.startswith(expected)
    else:
        assert rollback_preflight(ctx, p).refusals[0].startswith(expected)
    assert ran(ctx) == []


# --- failover --to ----------------------------------------------------------------------------


def test_failover_to_fences_the_old_primary_through_both_projects(tmp_path: Path) -> None:
    """Only what the host has is stopped (no PgBouncer on compose); the proof that
    PostgreSQL is down is its containers' state, then psql in Patroni's container."""
    ctx = context(compose_inventory(tmp_path))
    p = UpgradeParams(ctx.inventory, ctx.generated)
    notes = fence(ctx, p, "node1", keep_etcd=True)
    assert [c for c in ran(ctx) if "stop" in c] == [
        (*PAIR, "stop", "-t", "60", "hapair-keepalived"),
        (*APP, "stop", "-t", "60", "nginx"),
        (*APP, "stop", "-t", "60", "authoring"),
        (*APP, "stop", "-t", "60", "frontend"),
        (*PAIR, "stop", "-t", "120", "hapair-patroni"),
        (*PAIR, "stop", "-t", "60", "hapair-sentinel"),
        (*PAIR, "stop", "-t", "60", "hapair-redis"),
    ]
    psql = [c for c in ran(ctx) if "psql" in c]
    assert psql == [(*PAIR, "exec", "-T", "-u", "postgres", "-e", "PGCONNECT_TIMEOUT=5", "-e",
                     "PGDATABASE=postgres", "-e", "PGUSER=idp", "hapair-patroni", "psql", "-X",
                     "-p", "5432", "-Atc", PG_STATE_SQL)]
    assert notes[-1] == "node1 fenced: its services stopped, its hapair-patroni container is " \
                        "stopped"


def test_failover_to_refuses_a_still_running_patroni_container(tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(manual_failover, "CONTAINER_STOP_WAIT_S", 0.0)
    ctx = context(compose_inventory(tmp_path))
    node1 = ctx.transports["node1"]
    node1.on([*PAIR, "ps", "-a", "--format", "json", "hapair-patroni"],  # type: ignore[attr-defined]
             stdout=json.dumps({"Service": "hapair-patroni", "State": "running"}) + "\n")
    p = UpgradeParams(ctx.inventory, ctx.generated)
    with pytest.raises(StepFailed, match="containers stopped"):
        fence(ctx, p, "node1", keep_etcd=True)


# --- the scheduler follows the primary --------------------------------------------------------

NODE2_APP = ["docker", "compose", "-p", "idp-cms", "-f", str(COMPOSE_FILE), "--env-file",
             str(ENV_FILE).replace(".env.node1", ".env.node2")]


def test_the_scheduler_moves_stop_first_then_start(tmp_path: Path) -> None:
    ctx = context(compose_inventory(tmp_path))
    p = UpgradeParams(ctx.inventory, ctx.generated)
    note = follow_primary(ctx, p, "node2", "node1")
    assert note == "scheduler (Celery beat): stopped on node1; running on node2"
    moves = [c for c in ran(ctx) if c[-1] == "celery-beat"]
    assert moves == [(*APP, "stop", "-t", "60", "celery-beat"),
                     (*NODE2_APP, "up", "-d", "--no-deps", "celery-beat")]


def test_an_unreachable_old_node_still_gets_a_new_scheduler(tmp_path: Path) -> None:
    ctx = context(compose_inventory(tmp_path))
    ctx.transports["node1"].on([*APP, "stop", "-t", "60", "celery-beat"],  # type: ignore[attr-defined]
                               returncode=255, stderr="ssh: connect to host: No route")
    p = UpgradeParams(ctx.inventory, ctx.generated)
    note = follow_primary(ctx, p, "node2", "node1") or ""
    assert "NOT stopped on node1" in note and "`hapair rejoin node1` stops it" in note
    assert note.endswith("running on node2")
    assert stop_on_standby(ctx, p, "node1") is not None


def test_no_scheduler_mapped_nothing_moves(tmp_path: Path) -> None:
    inv = compose_inventory(tmp_path, ("\n        scheduler: celery-beat\n", "\n"))
    ctx = context(inv)
    p = UpgradeParams(inv, ctx.generated)
    assert follow_primary(ctx, p, "node2", "node1") is None
    assert stop_on_standby(ctx, p, "node1") is None
    assert ran(ctx) == []


# --- `hapair plan`: what the upgrade would generate and edit ------------------------------------


def test_plan_preview_generates_every_host_and_diffs_the_user_s_file(tmp_path: Path) -> None:
    node1 = original_host_transport()
    node1.on(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=idp-cms",
              "--format", "{{.ID}}"], stdout=recorded("ps-ids.txt"))  # the inventory's project
    node1.files[REMOTE_FILE] = StoredFile(COMPOSE_FILE.read_bytes())
    text, _ = render_draft(discover_remote(original_host_transport()), SSH)
    inv = parse_inventory(filled_draft(text, tmp_path), base_dir=tmp_path)
    ctx = WorkflowContext(inv, {"node1": node1})  # type: ignore[dict-item]
    doc = compose_preview(ctx, inv).as_dict()

    assert [(b["host"], b["project"], b["violations"]) for b in doc["generated"]] == [
        ("node1", "idp-cms-hapair", []), ("node2", "idp-cms-hapair", []),
        ("witness", "idp-cms-hapair", [])]
    first = doc["generated"][0]
    assert "hapair-patroni" in first["services"] and first["data_volume_reused"] is True
    assert doc["generated"][1]["data_volume_reused"] is False  # node2: cloned into
    by_node = {e["node"]: e for e in doc["edits"]}
    assert "10.0.0.11:5432:5432" in by_node["node1"]["diff"]
    assert "10.0.0.12:5432:5432" in by_node["node2"]["diff"]
    assert any(line.startswith("postgres: recreate") for line in by_node["node1"]["containers"])
    assert ".env.node2" in by_node["node2"]["diff"]
    shown = json.dumps(doc)
    assert_no_secret(shown)
    assert "placeholder-not-installed" not in shown  # config contents are never shown
    # read-only: discovery's commands and one file read, nothing written
    assert all(c.kind in ("run", "read_file") for c in node1.calls)
    assert not any(c[:3] == ("docker", "compose", "-p") and "up" in c for c in node1.commands)

    console = Console(record=True, width=200)
    render_compose({"compose": doc}, console)
    out = console.export_text()
    assert "node2: project idp-cms-hapair" in out
    assert '+      - "10.0.0.12:5432:5432"' in out


def test_router_admin_socket_is_reached_on_the_host(tmp_path: Path) -> None:
    """The HAProxy image has no client for its admin socket: on a compose host it is the host
    side of the router container's /run/haproxy (a bind mount), driven with the host's
    python3 over the host's own transport."""
    from hapair.workflows.ops.pair import router_admin, router_backend_up

    inv = compose_inventory(tmp_path)
    ctx = context(inv)
    transport, socket = router_admin(ctx, "node1")
    assert transport is ctx.transports["node1"]
    assert socket == "/opt/hapair/idp-cms/node1/router/run/hapair-router.sock"
    ctx.transports["node1"].on_prefix(  # type: ignore[attr-defined]
        ["python3"], stdout="# pxname,svname,status\npostgres,node1,UP\npostgres,node2,DOWN\n")
    assert router_backend_up(ctx, "node1", "postgres", "node1")
    assert not router_backend_up(ctx, "node1", "postgres", "node2")
    argv = ran(ctx)[-1]
    assert argv[0] == "python3" and socket in argv and "exec" not in argv


# --- etcd without its majority, on compose hosts ----------------------------------------------

PAIR2 = [*PAIR[:4], "-f", "/opt/hapair/idp-cms/node2/docker-compose.hapair.yml"]
ETCD2 = "/opt/hapair/idp-cms/node2/etcd/etcd.yaml"


def _etcd_yaml(ctx: WorkflowContext, p: UpgradeParams) -> str:
    members = tuple(HostSpec(m.name, m.address) for m in p.etcd_members)
    return etcd_config(ctx.inventory.cluster, members[1], members)


def _etcdctl_in_container(t: RecordingTransport, *args: str, stdout: str) -> None:
    t.on_prefix([*PAIR2, "exec", "-T", "-e", "ETCDCTL_API=3", "hapair-etcd", "etcdctl"],
                stdout=stdout)


def test_failover_to_re_forms_etcd_from_the_compose_bundle_s_own_file(tmp_path: Path) -> None:
    """The forced start edits the bind-mounted file (container paths kept), then puts the
    normal one back; etcdctl runs in etcd's container (the host need not have it)."""
    ctx = context(compose_inventory(tmp_path))
    p = UpgradeParams(ctx.inventory, ctx.generated)
    node2 = ctx.transports["node2"]
    assert isinstance(node2, RecordingTransport)
    original = _etcd_yaml(ctx, p)
    node2.files[ETCD2] = StoredFile(original.encode())
    health = json.dumps([{"endpoint": "http://10.0.0.12:2379", "health": True}])
    members = json.dumps({"members": [{"ID": 1, "name": "node2",
                                       "peerURLs": ["http://10.0.0.12:2380"]}]})
    node2.on_prefix([*PAIR2, "exec", "-T", "-e", "ETCDCTL_API=3", "hapair-etcd", "etcdctl",
                     "--endpoints=http://10.0.0.12:2379", "--dial-timeout=2s",
                     "--command-timeout=3s", "endpoint", "health"], stdout=health)
    node2.on_prefix([*PAIR2, "exec", "-T", "-e", "ETCDCTL_API=3", "hapair-etcd", "etcdctl",
                     "--endpoints=http://10.0.0.12:2379", "--dial-timeout=2s",
                     "--command-timeout=3s", "member", "list"], stdout=members)
    writes: list[str] = []
    store = node2.write_file

    def write_file(path: str, data: str | bytes, **kw: object) -> None:
        writes.extend([str(data)] if path == ETCD2 else [])
        store(path, data, **kw)  # type: ignore[arg-type]

    node2.write_file = write_file  # type: ignore[method-assign]
    note = force_one_member(ctx, p, "node2")
    assert note == "etcd re-formed as a one-member cluster on node2 (members: node2)"
    forced, normal = (YAML(typ="safe").load(text) for text in writes)
    before = YAML(typ="safe").load(original)
    assert forced == {**before, "force-new-cluster": True}
    assert normal == before and forced["data-dir"] == before["data-dir"]
    compose = [c[len(PAIR2):] for c in node2.commands if tuple(c[:len(PAIR2)]) == tuple(PAIR2)
               and "exec" not in c]
    assert compose[:2] == [("stop", "-t", "60", "hapair-etcd"),
                           ("up", "-d", "--no-deps", "hapair-etcd")]
    assert ("restart", "-t", "60", "hapair-etcd") in compose
    assert not [c for c in node2.commands if c[0] == "etcdctl"]


def test_a_re_added_compose_member_starts_on_a_fresh_directory_beside_the_old(
        tmp_path: Path) -> None:
    ctx = context(compose_inventory(tmp_path))
    p = UpgradeParams(ctx.inventory, ctx.generated)
    node2 = ctx.transports["node2"]
    assert isinstance(node2, RecordingTransport)
    node2.files[ETCD2] = StoredFile(_etcd_yaml(ctx, p).encode())
    files = member_files(ctx, p, "node2")
    fresh = files.with_fresh_data(node2)
    old = files.base["data-dir"]
    assert fresh.base["data-dir"].startswith(f"{old}.reseeded-")
    assert node2.commands == []  # nothing moved on the host: a new directory instead
    again = YAML(typ="safe").load(fresh.rejoining([p.etcd("witness").me]))
    assert again["initial-cluster-state"] == "existing"
    assert again["initial-cluster"] == ("witness=http://10.0.0.13:2380,"
                                        "node2=http://10.0.0.12:2380")


# --- migrate ----------------------------------------------------------------------------------

EDITED = "services:\n  authoring: {image: cms}\n  migrate: {image: cms, profiles: [migrate]}\n"


def _primary_is(monkeypatch: pytest.MonkeyPatch, node: str) -> None:
    members = [Member(n, "leader" if n == node else "sync_standby", "running")
               for n in ("node1", "node2")]
    monkeypatch.setattr(migrate_mod, "cluster", lambda p: members)


def test_migrate_runs_the_one_shot_service_once_on_the_primary_s_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _primary_is(monkeypatch, "node2")
    ctx = context(compose_inventory(tmp_path))
    p = UpgradeParams(ctx.inventory, ctx.generated)
    node2 = ctx.transports["node2"]
    assert isinstance(node2, RecordingTransport)
    node2.files[str(COMPOSE_FILE)] = StoredFile(EDITED.encode())
    result = migrate_mod.migrate(ctx, p)
    job = [*NODE2_APP, "--profile", "migrate", "run", "--rm", "-T", "--no-deps", "migrate"]
    assert (result.node, result.ok, result.argv) == ("node2", True, job)
    assert [c for c in ran(ctx) if "run" in c] == [tuple(job)]
    dry = migrate_mod.migrate(ctx, p, dry_run=True)
    assert dry.returncode is None and [c for c in ran(ctx) if "run" in c] == [tuple(job)]


def test_migrate_refuses_a_stack_without_the_migrate_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _primary_is(monkeypatch, "node1")
    ctx = context(compose_inventory(tmp_path))
    node1 = ctx.transports["node1"]
    assert isinstance(node1, RecordingTransport)
    node1.files[str(COMPOSE_FILE)] = StoredFile(COMPOSE_FILE.read_bytes())
    with pytest.raises(Refused, match="node1: no `migrate` service in"):
        migrate_mod.migrate(ctx, UpgradeParams(ctx.inventory, ctx.generated))
    assert [c for c in ran(ctx) if "run" in c] == []
