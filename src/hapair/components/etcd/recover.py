"""etcd after losing its majority (pure): the survivor as a one-member cluster, members re-added.

etcd's disaster-recovery procedure (etcd.io op-guide "recovery"; decision 0003): the surviving
member restarts ONCE with `force-new-cluster` (it keeps its data, Patroni's keys included, and
rewrites the membership to itself alone), then runs normally again; every other member is
re-added with `member add` and restarted with an EMPTY data directory and
`initial-cluster-state: existing`. A lost member must never come back with its old data: two
old members together would be a majority of the old cluster, a second DCS.

With a config file etcd 3.4 ignores command-line flags, so the flags go into the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hapair.components.common import RenderedFile, dump_yaml
from hapair.components.etcd.config import EtcdMember, EtcdParams, config_dict


def force_new_cluster_config(params: EtcdParams,
                             base: Mapping[str, object] | None = None) -> RenderedFile:
    """The survivor's config for its one forced start (then the normal config again).
    `base`: the member's config as it is (a compose host's generated file); default: as
    hapair renders it on a native host."""
    doc = {**(base if base is not None else config_dict(params)), "force-new-cluster": True}
    text = dump_yaml(doc, header=f"etcd member {params.name} — FORCED one-member cluster "
                                 "(hapair failover --to); replaced right after the start")
    return RenderedFile(params.config_path, text, mode=0o644)


def rejoin_config(params: EtcdParams, members_now: Sequence[EtcdMember],
                  base: Mapping[str, object] | None = None) -> RenderedFile:
    """A re-added member's config: the cluster as it is now plus this member, `existing`.
    etcd compares this list with the live membership when it joins: it must be exact.
    `base` as in force_new_cluster_config."""
    names = {m.name for m in members_now}
    cluster = [*members_now, *([params.me] if params.name not in names else [])]
    doc = {**(base if base is not None else config_dict(params)),
           "initial-cluster-state": "existing",
           "initial-cluster": ",".join(f"{m.name}={m.peer_url}" for m in cluster)}
    text = dump_yaml(doc, header=f"etcd member {params.name} — re-added to the cluster by hapair")
    return RenderedFile(params.config_path, text, mode=0o644)


def member_add_argv(endpoints: Sequence[str], member: EtcdMember, *,
                    learner: bool = False) -> list[str]:
    """A learner does not count towards the quorum until promoted: adding one never stalls
    a cluster whose new member has not started yet."""
    return ["etcdctl", f"--endpoints={','.join(endpoints)}", "--dial-timeout=2s",
            "--command-timeout=10s", "member", "add", member.name,
            f"--peer-urls={member.peer_url}", *(["--learner"] if learner else [])]


def member_remove_argv(endpoints: Sequence[str], member_id: int) -> list[str]:
    return ["etcdctl", f"--endpoints={','.join(endpoints)}", "--dial-timeout=2s",
            "--command-timeout=10s", "member", "remove", f"{member_id:x}"]


def serializable_get_argv(endpoint: str, key: str) -> list[str]:
    """A read from ONE member's own copy (no quorum needed): what it last knew."""
    return ["etcdctl", f"--endpoints={endpoint}", "--dial-timeout=2s", "--command-timeout=3s",
            "get", key, "--consistency=s", "-w", "json"]
