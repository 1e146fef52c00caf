"""keepalived: the front-door VIP on the two data nodes (unicast VRRP, BACKUP + nopreempt).

Eligibility (a track_script; failing = FAULT = the VIP is released):
- `etcd_quorum` (default): the local etcd member answers a quorum read. An isolated node
  (neither witness nor peer reachable) fails and gives the VIP up — the partition case from
  LAB_NOTES where plain VRRP made BOTH nodes master. Unlike a witness-only check, losing the
  witness alone does not take the VIP away from both nodes (which would take the site down).
- `witness_tcp`: a bounded TCP connect to the witness (its etcd client port). Simpler, but
  the front door then depends on the witness being up.
Neither handles a cut between node1 and node2 while both still see the witness: both hold
the VIP then (VRRP adverts are lost). A cloud LB or LB host avoids that; see ARCHITECTURE §2.

The VRRP PASS password (8 characters at most; keepalived silently truncates longer ones) is
derived from a secret, so both nodes agree without storing another secret. PASS is sent in
clear: it only guards against cross-talk with another VRRP group, not an attacker.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from hapair.components.common import (
    Check,
    Endpoint,
    RenderedFile,
    SecretValue,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_secret_text,
    require_token,
)
from hapair.errors import UsageError

Eligibility = Literal["etcd_quorum", "witness_tcp"]


def vrrp_password(secret: SecretValue) -> str:
    """8 hex characters derived from the secret (same on both nodes, no quoting issues)."""
    raw = require_secret_text(secret, "keepalived secret")
    return hashlib.sha256(b"hapair-vrrp:" + raw.encode("utf-8")).hexdigest()[:8]


def default_vrid(cluster: str) -> int:
    """A stable virtual_router_id in 1..255 from the cluster name (override on clashes)."""
    return 1 + int(hashlib.sha256(cluster.encode()).hexdigest(), 16) % 255


@dataclass(frozen=True)
class KeepalivedParams:
    node_name: str
    address: str  # unicast_src_ip: this node's private address
    peers: tuple[str, ...]  # unicast_peer: the other node(s)
    vip: str  # the front door address
    prefix: int  # its prefix length on `interface` (e.g. 24)
    interface: str
    priority: int  # higher holds the VIP first (e.g. node1 150, node2 100)
    vrid: int
    secret: SecretValue = field(repr=False)  # the VRRP password is derived from it
    instance: str = "hapair_front"
    eligibility: Eligibility = "etcd_quorum"
    etcd_endpoint: Endpoint = Endpoint("127.0.0.1", 2379)  # the local member (etcd_quorum)
    witness: Endpoint | None = None  # witness_tcp: the witness's etcd client port
    http_port: int = 80
    http_path: str = "/health/"
    http_host: str | None = None  # Host header for the LB check; default: the VIP
    config_path: str = "/etc/keepalived/keepalived.conf"
    script_dir: str = "/etc/keepalived/hapair"  # root-owned, not writable by others
    script_user: str = "root"
    etcdctl: str = "/usr/bin/etcdctl"

    def __post_init__(self) -> None:
        require_name(self.node_name, "keepalived node_name")
        require_ip(self.address, "keepalived address")
        require_ip(self.vip, "keepalived vip")
        if not self.peers:
            raise UsageError("keepalived peers: the other node's address is needed")
        for peer in self.peers:
            require_ip(peer, "keepalived peer")
        if self.address in self.peers or self.vip in (self.address, *self.peers):
            raise UsageError("keepalived: the VIP, this node and its peers must all differ")
        max_prefix = ipaddress.ip_address(self.vip).max_prefixlen
        if not 1 <= self.prefix <= max_prefix:
            raise UsageError(f"keepalived prefix: {self.prefix} is not within 1-{max_prefix}")
        require_token(self.interface, "keepalived interface")
        if not 1 <= self.priority <= 254:
            raise UsageError("keepalived priority must be within 1-254 (255 = address owner)")
        if not 1 <= self.vrid <= 255:
            raise UsageError("keepalived vrid must be within 1-255")
        require_name(self.instance, "keepalived instance")
        if self.eligibility == "witness_tcp" and self.witness is None:
            raise UsageError("keepalived witness: needed with eligibility witness_tcp")
        if self.eligibility not in ("etcd_quorum", "witness_tcp"):
            raise UsageError(f"keepalived eligibility: {self.eligibility!r}")
        require_port(self.http_port, "keepalived http_port")
        require_abs_path(self.http_path, "keepalived http_path")
        require_token(self.http_host or self.vip, "keepalived http_host")
        require_abs_path(self.config_path, "keepalived config_path")
        require_abs_path(self.script_dir, "keepalived script_dir")
        require_abs_path(self.etcdctl, "keepalived etcdctl")
        require_name(self.script_user, "keepalived script_user")

    @property
    def eligibility_script(self) -> str:
        return f"{self.script_dir}/check-eligible"

    @property
    def http_script(self) -> str:
        return f"{self.script_dir}/check-http-lb"


_REASONS = {
    "etcd_quorum": "Eligible only while the local etcd member is in a quorum (isolated -> no VIP).",
    "witness_tcp": "Eligible only while the witness answers (isolated -> no VIP).",
}


def render_keepalived_config(p: KeepalivedParams, *, takeover: bool = False) -> RenderedFile:
    """`takeover`: the first start on the node that already holds the address (the single
    server's service address): start MASTER so the address is never dropped; the normal
    config (BACKUP + nopreempt) is put back with a reload, which keeps the MASTER state."""
    text = render_template(
        "keepalived/keepalived.conf.j2",
        takeover=takeover,
        node=p.node_name,
        script_user=p.script_user,
        eligibility_reason=_REASONS[p.eligibility],
        eligibility_script=p.eligibility_script,
        eligibility_interval=2 if p.eligibility == "etcd_quorum" else 1,
        eligibility_timeout=3 if p.eligibility == "etcd_quorum" else 2,
        http_script=p.http_script,
        instance=p.instance,
        interface=p.interface,
        vrid=p.vrid,
        priority=p.priority,
        address=p.address,
        peers=p.peers,
        auth_pass=vrrp_password(p.secret),
        vip=p.vip,
        prefix=p.prefix,
    )
    return RenderedFile(p.config_path, text, mode=0o600, owner="root", secret=True)


def render_check_scripts(p: KeepalivedParams) -> tuple[RenderedFile, RenderedFile]:
    """The two track scripts: root-owned 0755 (enable_script_security refuses scripts that
    a non-root user could modify)."""
    if p.eligibility == "etcd_quorum":
        eligible = render_template(
            "keepalived/check-etcd-quorum.sh.j2", etcdctl=p.etcdctl,
            endpoint=f"http://{p.etcd_endpoint}")
    else:
        eligible = render_template("keepalived/check-witness-tcp.sh.j2", witness=p.witness)
    http = render_template("keepalived/check-http-lb.sh.j2", port=p.http_port,
                           path=p.http_path, host=p.http_host or p.vip)
    return (RenderedFile(p.eligibility_script, eligible, mode=0o755, owner="root"),
            RenderedFile(p.http_script, http, mode=0o755, owner="root"))


def keepalived_argv(p: KeepalivedParams, binary: str = "keepalived") -> list[str]:
    """Foreground under the supervisor, logging to stderr; VRRP only (no LVS)."""
    return [binary, "--dont-fork", "--log-console", "--vrrp", "-f", p.config_path]


def config_test_argv(config_path: str, binary: str = "keepalived") -> list[str]:
    return [binary, "--config-test", "-f", config_path]


def vip_probe_argv(interface: str) -> list[str]:
    """The addresses on the VRRP interface (`ip -o addr show dev IF`)."""
    return ["ip", "-o", "addr", "show", "dev", require_token(interface, "interface")]


def parse_holds_vip(output: str, vip: str) -> bool:
    """True when `ip -o addr show` lists the VIP ("… inet 10.99.0.10/24 … eth0 …")."""
    for line in output.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word in ("inet", "inet6") and words[i + 1].split("/")[0] == vip:
                return True
    return False


def check_single_holder(holders: dict[str, bool], vip: str) -> Check:
    """Exactly one node holds the VIP: none = front door down, two = split brain."""
    held = sorted(name for name, has in holders.items() if has)
    if len(held) == 1:
        return Check.passed(f"VIP {vip} is on {held[0]}")
    if not held:
        return Check.failed(f"VIP {vip} is on no node: the front door is down")
    return Check.failed(f"VIP {vip} is on {', '.join(held)} at once (split brain)")
