"""The upgrade's storage phase: its steps in order, and the router step's gate (writes must
go to the primary's site only, read from the write selector's `show stat`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hapair.components.storage import router as s3router
from hapair.components.storage import writer as s3writer
from hapair.exec.recording import RecordingTransport
from hapair.inventory import load_inventory
from hapair.plan.step import StepContext
from hapair.workflows.context import GeneratedSecrets
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.steps_storage import routed, storage_steps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp," \
         "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid," \
         "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code," \
         "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail," \
         "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp," \
         "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,"


def stat(node1: str, node2: str) -> str:
    rows = [HEADER]
    for name, status in (("node1", node1), ("node2", node2)):
        check = "L7OK" if status == "UP" else "L7STS"
        cols = ["s3_write", name] + [""] * 15 + [status] + [""] * 18 + [check] + [""] * 27
        rows.append(",".join(cols))
    return "\n".join(rows) + "\n"


@pytest.fixture
def params(tmp_path: Path) -> UpgradeParams:
    inv = load_inventory(write_inventory(tmp_path))
    return UpgradeParams(inv, GeneratedSecrets(tmp_path / "secrets" / "generated"))


def test_steps_in_order(params: UpgradeParams) -> None:
    assert [s.id for s in storage_steps(params)] == [
        "upgrade/node2/storage.site", "upgrade/node2/storage.seed",
        "upgrade/node2/storage.replication", "upgrade/node1/storage.replication",
        "upgrade/node1/storage.router", "upgrade/node2/storage.router"]


class Running:
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def status(self, name: str):  # type: ignore[no-untyped-def]
        from hapair.exec.runtime import ServiceState, ServiceStatus
        state = ServiceState.RUNNING if name in self.names else ServiceState.ABSENT
        return ServiceStatus(name, state)


@pytest.mark.parametrize(
    ("programs", "node1", "node2", "ok", "reason"),
    [
        ({s3writer.PROGRAM, s3router.PROGRAM}, "UP", "DOWN", True,
         "writes on node2 go to node1's site"),
        ({s3writer.PROGRAM, s3router.PROGRAM}, "UP", "UP", False,
         "writes on node2 go to node1, node2, expected node1's site only"),
        ({s3writer.PROGRAM, s3router.PROGRAM}, "DOWN", "UP", False,
         "writes on node2 go to node2, expected node1's site only"),
        ({s3writer.PROGRAM}, "UP", "DOWN", False, "node2: hapair-s3-router absent"),
        # before the Patroni handover nobody answers GET /primary: programs running is enough
        ({s3writer.PROGRAM, s3router.PROGRAM}, "DOWN", "DOWN", True,
         "node2: write selector and router run; no node answers GET /primary yet (Patroni "
         "not in charge): writes go to its own site"),
    ],
)
def test_router_gate(params: UpgradeParams, programs: set[str], node1: str, node2: str,
                     ok: bool, reason: str) -> None:
    from hapair.components.storage.site import Site
    from hapair.workflows.storage import StorageNode

    t = RecordingTransport("node2")
    t.on_prefix(["python3", "-c"], stdout=stat(node1, node2))
    me = StorageNode(Site("node2", "10.99.0.12"), t, Running(programs))  # type: ignore[arg-type]
    peer = StorageNode(Site("node1", "10.99.0.11"), RecordingTransport("node1"),
                       Running(set()))  # type: ignore[arg-type]
    check = routed(StepContext("node2", {"node2": t}), lambda _ctx: (me, peer), "node1")
    assert (check.ok, check.reason) == (ok, reason)
