"""etcd majority recovery: the forced survivor config, a re-added member's config, argv."""

from ruamel.yaml import YAML

from hapair.components.etcd import EtcdMember, EtcdParams
from hapair.components.etcd.recover import (
    force_new_cluster_config,
    member_add_argv,
    rejoin_config,
    serializable_get_argv,
)

MEMBERS = (EtcdMember("node1", "10.99.0.11"), EtcdMember("node2", "10.99.0.12"),
           EtcdMember("witness", "10.99.0.13"))


def load(text: str) -> dict:
    return YAML(typ="safe").load(text)


def test_forced_config_keeps_everything_and_adds_the_flag() -> None:
    doc = load(force_new_cluster_config(EtcdParams("node2", MEMBERS, "hapair-cms")).content)
    assert doc["force-new-cluster"] is True
    assert doc["data-dir"] == "/var/lib/etcd/node2" and doc["name"] == "node2"


def test_rejoin_config_lists_the_live_members_plus_itself() -> None:
    live = (MEMBERS[1],)  # node2 alone after the forced start
    doc = load(rejoin_config(EtcdParams("witness", MEMBERS, "hapair-cms"), live).content)
    assert doc["initial-cluster-state"] == "existing"
    assert doc["initial-cluster"] == ("node2=http://10.99.0.12:2380,"
                                      "witness=http://10.99.0.13:2380")
    assert "force-new-cluster" not in doc
    # already listed (added before, not started): not twice
    again = load(rejoin_config(EtcdParams("witness", MEMBERS, "hapair-cms"),
                               (MEMBERS[1], MEMBERS[2])).content)
    assert again["initial-cluster"] == doc["initial-cluster"]


def test_member_add_as_learner_and_serializable_read() -> None:
    assert member_add_argv(["http://10.99.0.12:2379"], MEMBERS[2], learner=True) == [
        "etcdctl", "--endpoints=http://10.99.0.12:2379", "--dial-timeout=2s",
        "--command-timeout=10s", "member", "add", "witness",
        "--peer-urls=http://10.99.0.13:2380", "--learner"]
    argv = serializable_get_argv("http://10.99.0.12:2379", "/service/cms/sync")
    assert "--consistency=s" in argv and argv[-2:] == ["-w", "json"]
