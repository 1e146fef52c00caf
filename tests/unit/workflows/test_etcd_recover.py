"""etcd after a lost majority, over recording transports: the survivor's one forced start and
a lost member re-added as a learner (commands and files, in order)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hapair.components.etcd.probe import endpoint_health_argv, member_list_argv
from hapair.exec.recording import RecordingTransport, Reply
from hapair.inventory import load_inventory
from hapair.workflows.context import GeneratedSecrets, WorkflowContext
from hapair.workflows.ops.etcd_recover import force_one_member, reseed, stale_members
from hapair.workflows.upgrade.params import UpgradeParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

URL = {"node1": "http://10.99.0.11", "node2": "http://10.99.0.12",
       "witness": "http://10.99.0.13"}


@pytest.fixture
def params(tmp_path: Path) -> UpgradeParams:
    return UpgradeParams(load_inventory(write_inventory(tmp_path)),
                         GeneratedSecrets(tmp_path / "generated"))


def members(*ms: tuple[int, str, str, bool]) -> str:
    """(id, host, name ('' = not started), learner) → `member list -w json`."""
    return json.dumps({"members": [
        {"ID": i, "name": name, "peerURLs": [f"{URL[host]}:2380"],
         "clientURLs": [f"{URL[host]}:2379"] if name else [], "isLearner": learner}
        for i, host, name, learner in ms]})


def healthy(host: str) -> str:
    return json.dumps([{"endpoint": f"{URL[host]}:2379", "health": True, "took": "1ms"}])


def supervisor_verbs(t: RecordingTransport, program: str) -> list[str]:
    return [c[-2] for c in t.commands if c[0] == "supervisorctl" and c[-1] == program]


def test_force_one_member_starts_once_forced_then_normal(params: UpgradeParams) -> None:
    node2 = RecordingTransport("node2")
    node2.on(endpoint_health_argv([f"{URL['node2']}:2379"]), stdout=healthy("node2"))
    node2.on(member_list_argv([f"{URL['node2']}:2379"]), stdout=members((2, "node2", "node2",
                                                                          False)))
    ctx = WorkflowContext(params.inv, {"node2": node2})
    note = force_one_member(ctx, params, "node2")
    assert supervisor_verbs(node2, "etcd") == ["stop", "start", "restart"]
    writes = [c for c in node2.calls if c.kind == "write_file"]
    assert [c.path for c in writes] == ["/etc/hapair/etcd.yaml"] * 2
    assert b"force-new-cluster: true" in (writes[0].data or b"")
    assert b"force-new-cluster" not in (writes[1].data or b"")  # never left in the file
    assert note == "etcd re-formed as a one-member cluster on node2 (members: node2)"


def test_a_lost_member_comes_back_wiped_as_a_learner_then_promoted(
        params: UpgradeParams) -> None:
    node2, witness = RecordingTransport("node2"), RecordingTransport("witness")
    alone = members((2, "node2", "node2", False))
    added = members((2, "node2", "node2", False), (3, "witness", "", True))
    started = members((2, "node2", "node2", False), (3, "witness", "witness", True))
    node2.on(member_list_argv([f"{URL['node2']}:2379"]), Reply(stdout=alone),
             Reply(stdout=added), Reply(stdout=started))
    node2.on_prefix(["etcdctl", f"--endpoints={URL['node2']}:2379", "--dial-timeout=2s",
                     "--command-timeout=5s", "member", "promote"],
                    Reply(returncode=1, stderr="can only promote a learner member which is in "
                                               "sync with leader"), Reply())
    witness.on(endpoint_health_argv([f"{URL['witness']}:2379"]), stdout=healthy("witness"))
    ctx = WorkflowContext(params.inv, {"node2": node2, "witness": witness})
    note = reseed(ctx, params, "witness", via="node2")
    assert supervisor_verbs(witness, "etcd") == ["stop", "start"]
    wipe = next(c for c in witness.commands if c[0] == "sh")
    assert "mv" in wipe[2] and wipe[-1] == "/var/lib/etcd/witness"  # moved aside, not deleted
    assert ("etcdctl", f"--endpoints={URL['node2']}:2379", "--dial-timeout=2s",
            "--command-timeout=10s", "member", "add", "witness",
            f"--peer-urls={URL['witness']}:2380", "--learner") in node2.commands
    promotes = [c for c in node2.commands if "promote" in c]
    assert len(promotes) == 2 and promotes[-1][-1] == "3"  # retried until caught up; hex id
    first, last = [c.data or b"" for c in witness.calls if c.kind == "write_file"]
    assert b"initial-cluster-state: existing" in first
    assert (f"initial-cluster: node2={URL['node2']}:2380,witness={URL['witness']}:2380"
            .encode()) in first
    assert b"initial-cluster-state: new" in last  # the normal file again (data present)
    assert note == "etcd member witness wiped (old data kept aside) and re-added via node2"


def test_stale_members_lists_the_witness_first(params: UpgradeParams) -> None:
    node2 = RecordingTransport("node2")
    node2.on(member_list_argv([f"{URL['node2']}:2379"]), stdout=members((2, "node2", "node2",
                                                                          False)))
    ctx = WorkflowContext(params.inv, {"node2": node2})
    assert stale_members(ctx, params, "node2") == ["witness", "node1"]
