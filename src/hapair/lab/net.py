"""The lab's network: a bridge on the controller, a veth "cable" and a netns per host.

Command builders are pure (argument lists, tested as data); the functions at the bottom run
them. No NAT and no default route: hosts reach each other, the controller, and nothing else.
"""

from __future__ import annotations

from hapair.lab import local
from hapair.lab.config import BRIDGE, NETNS_PREFIX, VETH_PREFIX, LabConfig, LabHost

PARTITION_CHAIN = "HAPAIR-PARTITION"
HOST_IF = "eth0"


def bridge_up_cmds(cfg: LabConfig) -> list[list[str]]:
    return [
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", f"{cfg.controller_address}/{cfg.prefixlen}", "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
    ]


def host_link_cmds(host: LabHost) -> list[list[str]]:
    """Create the host's netns and plug its cable into the bridge (addresses come at boot)."""
    return [
        ["ip", "netns", "add", host.netns],
        [
            "ip",
            "link",
            "add",
            host.veth,
            "type",
            "veth",
            "peer",
            "name",
            HOST_IF,
            "netns",
            host.netns,
        ],
        ["ip", "link", "set", host.veth, "master", BRIDGE],
        ["ip", "link", "set", host.veth, "up"],
        ["ip", "-n", host.netns, "link", "set", "lo", "up"],
    ]


def power_on_cmds(cfg: LabConfig, host: LabHost, service_address: bool) -> list[list[str]]:
    """What a booting host's network looks like: its own address, plus the static service
    address if it owns it; nothing left over from before (a keepalived VIP dies with power)."""
    ns = ["ip", "-n", host.netns]
    cmds = [
        [*ns, "addr", "flush", "dev", HOST_IF],
        [*ns, "addr", "add", f"{host.address}/{cfg.prefixlen}", "dev", HOST_IF],
    ]
    if service_address:
        cmds.append(service_address_argv(host, cfg.service_address, "add"))
    cmds += [
        [*ns, "link", "set", HOST_IF, "up"],
        ["ip", "link", "set", host.veth, "up"],
    ]
    return cmds


def service_address_argv(host: LabHost, address: str, verb: str) -> list[str]:
    """add/del/replace the service address on the host's eth0. /32: a second address like a
    cloud elastic IP, not a "secondary" that would vanish with the primary address."""
    return ["ip", "-n", host.netns, "addr", verb, f"{address}/32", "dev", HOST_IF]


def power_off_cmds(host: LabHost) -> list[list[str]]:
    # Both ends lose carrier, as when a machine loses power: peers see the link drop.
    return [
        ["ip", "link", "set", host.veth, "down"],
        ["ip", "-n", host.netns, "link", "set", HOST_IF, "down"],
    ]


def partition_rules(peer_address: str | None) -> list[list[str]]:
    """Rule bodies for the partition chain: all traffic on eth0, or only that with one peer.

    Loopback stays up: a partitioned host still talks to itself, as a real one would.
    """
    if peer_address is None:
        return [["-i", HOST_IF, "-j", "DROP"], ["-o", HOST_IF, "-j", "DROP"]]
    return [
        ["-i", HOST_IF, "-s", f"{peer_address}/32", "-j", "DROP"],
        ["-o", HOST_IF, "-d", f"{peer_address}/32", "-j", "DROP"],
    ]


def chain_setup_cmds() -> list[list[str]]:
    """Create the dedicated chain and hook it first in INPUT and OUTPUT (run when missing)."""
    return [
        ["iptables", "-w", "5", "-N", PARTITION_CHAIN],
        ["iptables", "-w", "5", "-I", "INPUT", "1", "-j", PARTITION_CHAIN],
        ["iptables", "-w", "5", "-I", "OUTPUT", "1", "-j", PARTITION_CHAIN],
    ]


def parse_partition_rules(iptables_s_output: str) -> list[str]:
    """Peers cut off, from `iptables -S HAPAIR-PARTITION`: 'all' for a full partition."""
    peers: list[str] = []
    for line in iptables_s_output.splitlines():
        f = line.split()
        if not f or f[0] != "-A" or "DROP" not in f:
            continue
        if "-s" in f:
            peers.append(f[f.index("-s") + 1].removesuffix("/32"))
        elif "-d" not in f:
            peers.append("all")
    return sorted(set(peers))


# -- effects ---------------------------------------------------------------------------------


def netns_list() -> list[str]:
    out = local.run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_netns() -> list[str]:
    return [n for n in netns_list() if n.startswith(NETNS_PREFIX)]


def link_exists(name: str) -> bool:
    return local.ok(["ip", "link", "show", "dev", name])


def leftover_veths() -> list[str]:
    out = local.run(["ip", "-o", "link", "show"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(VETH_PREFIX)]


def run_all(cmds: list[list[str]]) -> None:
    for argv in cmds:
        local.run(argv)


def _ipt(host: LabHost, *args: str) -> list[str]:
    return ["ip", "netns", "exec", host.netns, "iptables", "-w", "5", *args]


def iptables_in(host: LabHost, args: list[str], check: bool = True) -> str:
    return local.run(_ipt(host, *args), check=check).stdout


def _has_chain(host: LabHost) -> bool:
    return local.ok(_ipt(host, "-S", PARTITION_CHAIN))


def ensure_chain(host: LabHost) -> None:
    if not _has_chain(host):
        for argv in chain_setup_cmds():
            local.run(["ip", "netns", "exec", host.netns, *argv])


def add_partition(host: LabHost, peer_address: str | None) -> None:
    ensure_chain(host)
    for rule in partition_rules(peer_address):
        # -C first: partitioning twice does not stack duplicate rules.
        if not local.ok(_ipt(host, "-C", PARTITION_CHAIN, *rule)):
            iptables_in(host, ["-A", PARTITION_CHAIN, *rule])


def remove_partition(host: LabHost, peer_address: str | None) -> None:
    if not _has_chain(host):
        return
    for rule in partition_rules(peer_address):
        while local.ok(_ipt(host, "-C", PARTITION_CHAIN, *rule)):
            iptables_in(host, ["-D", PARTITION_CHAIN, *rule])


def partitions(host: LabHost) -> list[str]:
    res = local.run(_ipt(host, "-S", PARTITION_CHAIN), check=False)
    return parse_partition_rules(res.stdout) if res.returncode == 0 else []


def flush_partitions(host: LabHost) -> None:
    if _has_chain(host):
        iptables_in(host, ["-F", PARTITION_CHAIN])
