"""Rollback steps over recording transports: the files restored from the upgrade's archive
(adapted to node2), the service address kept while keepalived stops, the env file written
as a secret (0600), the peer's static entry removed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hapair.exec.recording import RecordingTransport
from hapair.inventory import load_inventory
from hapair.plan.step import Step, StepContext
from hapair.workflows.context import GeneratedSecrets
from hapair.workflows.rollback import backup
from hapair.workflows.rollback.params import CONFIGS_ARCHIVE, RollbackParams
from hapair.workflows.rollback.plan import build_plan
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.steps_front import STATIC_ADDRESSES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402


@pytest.fixture
def params(tmp_path: Path) -> UpgradeParams:
    inv = load_inventory(write_inventory(tmp_path))
    return UpgradeParams(inv, GeneratedSecrets(tmp_path / "secrets" / "generated"))


def transports(p: UpgradeParams) -> dict[str, RecordingTransport]:
    return {h.name: RecordingTransport(h.name) for h in p.etcd_hosts}


def step(rp: RollbackParams, tmp_path: Path, name: str) -> Step:
    plan = build_plan(rp, tmp_path / "runs")
    return next(s for s in plan.steps if s.id.endswith(f"/{name}"))


def test_restored_file_is_adapted_to_node2(params: UpgradeParams) -> None:
    first, second = params.data_nodes
    rp = RollbackParams(params, second.name)
    ts = transports(params)
    conf = f"listen_addresses = 'localhost,{first.address}'\n"
    pg_conf = f"{rp.data_dir.strip('/')}/postgresql.conf"
    ts[first.name].on(["tar", "-xzOf", CONFIGS_ARCHIVE, pg_conf], stdout=conf)
    ctx = StepContext(second.name, ts)
    f = backup.find(rp, "/postgresql.conf")
    assert backup.restored(ctx, rp, f) == f"listen_addresses = 'localhost,{second.address}'\n"
    backup.install(ctx, rp, f)
    stored = ts[second.name].files[f.dest]
    assert stored.data.decode().endswith(f"{second.address}'\n")
    assert (stored.mode, stored.owner) == (0o600, "postgres:postgres")
    assert ts[first.name].files == {}  # the first node's files are only read


def test_missing_archive_member_fails_the_step(params: UpgradeParams) -> None:
    first = params.data_nodes[0]
    rp = RollbackParams(params, first.name)
    ts = transports(params)
    ts[first.name].on_prefix(["tar"], returncode=2, stderr="Not found in archive")
    with pytest.raises(Exception, match="is not in"):
        backup.archived(StepContext(first.name, ts), rp, "/etc/nginx/nginx.conf")


def test_front_door_static_keeps_the_address(params: UpgradeParams, tmp_path: Path) -> None:
    first = params.data_nodes[0]
    rp = RollbackParams(params, first.name)
    ts = transports(params)
    assert STATIC_ADDRESSES not in ts[first.name].files  # no boot-time file yet
    s = step(rp, tmp_path, "front-door.static")
    assert s.action is not None
    s.action.run(StepContext(first.name, ts))
    t = ts[first.name]
    assert t.text(STATIC_ADDRESSES).endswith(f"\n{rp.vip}/32\n")
    # keepalived's stop and the re-add of the address run in ONE shell (no gap of round trips)
    shell = next(c for c in t.commands if c[:2] == ("sh", "-c") and "ip addr add" in c[2])
    assert "stop keepalived" in shell[2]
    assert shell[-2:] == (rp.vip, rp.interface)


def test_peer_static_entry_removed(params: UpgradeParams, tmp_path: Path) -> None:
    first, second = params.data_nodes
    rp = RollbackParams(params, first.name)
    ts = transports(params)
    ts[second.name] = RecordingTransport(second.name, files={
        STATIC_ADDRESSES: f"# boot\n{rp.vip}/32\n"})
    s = step(rp, tmp_path, "keepalived.stopped")
    assert s.host == second.name and s.action is not None
    s.action.run(StepContext(second.name, ts))
    assert ts[second.name].text(STATIC_ADDRESSES) == "# boot\n"


def test_env_files_are_secret_and_staged(params: UpgradeParams, tmp_path: Path) -> None:
    first = params.data_nodes[0]
    rp = RollbackParams(params, first.name)
    original = ("POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=5432\n"
                "REDIS_URL=redis://:pw@127.0.0.1:6379/0\nMINIO_ENDPOINT=127.0.0.1:9000\n")
    routed = original.replace("5432", "6432").replace("6379", "6380")
    ts = transports(params)
    ts[first.name] = RecordingTransport(first.name, files={rp.saved_env_path: original,
                                                           rp.env_path: routed})
    ts[first.name].on(["stat", "-c", "%U", rp.env_path], stdout="www-data\n")
    ctx = StepContext(first.name, ts)
    stage_a = step(rp, tmp_path, "app.direct-cache-media")
    assert stage_a.action is not None
    stage_a.action.run(ctx)
    env = ts[first.name].files[rp.env_path]
    assert (env.mode, env.owner) == (0o600, "www-data")
    text = env.data.decode()
    assert "POSTGRES_PORT=6432" in text and "127.0.0.1:6379" in text  # PG still via PgBouncer
    assert "pw" not in stage_a.action.describe()
    stage_b = step(rp, tmp_path, "app.direct")
    assert stage_b.action is not None
    stage_b.action.run(ctx)
    assert ts[first.name].text(rp.env_path) == original
    hups = [c for c in ts[first.name].commands if c[-3:] == ("signal", "HUP", "backend")]
    assert len(hups) == 2


def test_handback_restores_the_postgres_config_and_program(params: UpgradeParams) -> None:
    from hapair.workflows.rollback.steps_pg import postgres_files

    rp = RollbackParams(params, params.data_nodes[1].name)
    data = rp.data_dir.rstrip("/")
    assert [f.dest for f in postgres_files(rp)] == [
        f"{data}/postgresql.conf", f"{data}/pg_hba.conf", f"{data}/postgresql.auto.conf",
        f"{rp.include_dir(rp.target)}/postgres.conf"]
