"""etcd member configuration: a YAML file for `etcd --config-file` and the argv to run it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hapair.components.common import (
    RenderedFile,
    dump_yaml,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    require_token,
    unique,
)
from hapair.errors import UsageError


@dataclass(frozen=True)
class EtcdMember:
    name: str
    address: str  # the host's private address
    client_port: int = 2379
    peer_port: int = 2380

    def __post_init__(self) -> None:
        require_name(self.name, "etcd member name")
        require_ip(self.address, f"etcd member {self.name} address")
        require_port(self.client_port, f"etcd member {self.name} client_port")
        require_port(self.peer_port, f"etcd member {self.name} peer_port")

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"


@dataclass(frozen=True)
class EtcdParams:
    """One member's configuration. `members` lists all of them, this one included."""

    name: str
    members: tuple[EtcdMember, ...]
    cluster_token: str  # initial-cluster-token: keeps two clusters from joining by mistake
    config_path: str = "/etc/hapair/etcd.yaml"
    data_dir: str | None = None  # default /var/lib/etcd/<name>
    initial_state: Literal["new", "existing"] = "new"
    listen_loopback: bool = True  # local probes use 127.0.0.1 on the client port
    # 10x heartbeat as etcd advises; larger than the defaults (100/1000) because hosts with
    # 2 shared cores miss heartbeats under load, and 2.5 s is still well inside Patroni's
    # retry_timeout, so a re-election never costs the primary its leader key.
    heartbeat_ms: int = 250
    election_ms: int = 2500

    def __post_init__(self) -> None:
        require_name(self.name, "etcd name")
        require_token(self.cluster_token, "etcd cluster_token")
        require_abs_path(self.config_path, "etcd config_path")
        if self.data_dir is not None:
            require_abs_path(self.data_dir, "etcd data_dir")
        require_positive(self.heartbeat_ms, "etcd heartbeat_ms")
        require_positive(self.election_ms, "etcd election_ms")
        if self.election_ms < 5 * self.heartbeat_ms:
            raise UsageError("etcd election_ms must be at least 5 x heartbeat_ms")
        if self.initial_state not in ("new", "existing"):
            raise UsageError(f"etcd initial_state: {self.initial_state!r} is not new|existing")
        if len(self.members) < 3 or len(self.members) % 2 == 0:
            raise UsageError(
                f"etcd members: {len(self.members)} given; an odd number >= 3 is needed "
                "(two data nodes never make a quorum: add the witness)"
            )
        unique([m.name for m in self.members], "etcd member names")
        unique([m.peer_url for m in self.members], "etcd member peer URLs")
        if self.name not in {m.name for m in self.members}:
            raise UsageError(f"etcd name: {self.name!r} is not one of the members")

    @property
    def me(self) -> EtcdMember:
        return next(m for m in self.members if m.name == self.name)

    @property
    def effective_data_dir(self) -> str:
        return self.data_dir or f"/var/lib/etcd/{self.name}"


def initial_cluster(members: tuple[EtcdMember, ...]) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def config_dict(params: EtcdParams) -> dict[str, object]:
    me = params.me
    clients = [me.client_url]
    if params.listen_loopback:
        clients.append(f"http://127.0.0.1:{me.client_port}")
    return {
        "name": me.name,
        "data-dir": params.effective_data_dir,
        "listen-peer-urls": me.peer_url,
        "listen-client-urls": ",".join(clients),
        "initial-advertise-peer-urls": me.peer_url,
        "advertise-client-urls": me.client_url,
        "initial-cluster": initial_cluster(params.members),
        "initial-cluster-token": params.cluster_token,
        "initial-cluster-state": params.initial_state,
        "heartbeat-interval": params.heartbeat_ms,
        "election-timeout": params.election_ms,
        "enable-v2": False,  # Patroni uses the v3 API (etcd3)
        # Patroni's etcd3 client speaks JSON to the gRPC gateway (/v3/…); with a config file
        # etcd 3.4 leaves the gateway OFF unless it is named here.
        "enable-grpc-gateway": True,
        "strict-reconfig-check": True,  # refuse member changes that would lose quorum
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention": "1h",  # Patroni writes often; keep the db small
        "logger": "zap",
        "log-outputs": ["stderr"],
    }


def render_etcd_config(params: EtcdParams) -> RenderedFile:
    text = dump_yaml(config_dict(params), header=f"etcd member {params.name} — rendered by hapair")
    return RenderedFile(params.config_path, text, mode=0o644)


def etcd_argv(params: EtcdParams, binary: str = "etcd") -> list[str]:
    return [binary, "--config-file", params.config_path]
