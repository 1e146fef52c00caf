"""Lab configuration: where the lab lives, its subnet, its hosts and their addresses (pure).

Everything is derived from two settings (HAPAIR_LAB_DIR, HAPAIR_LAB_SUBNET) so that the rest
of the lab never hard-codes an address or a path.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from hapair.errors import UsageError

DEFAULT_LAB_DIR = "/var/lib/hapair-lab"
DEFAULT_SUBNET = "10.99.0.0/24"
BRIDGE = "hapair0"
NETNS_PREFIX = "hapair-"
VETH_PREFIX = "hp-"
# Host offsets inside the subnet; the controller (bridge) is .1, the site's service address .10.
CONTROLLER_OFFSET = 1
SERVICE_OFFSET = 10
HOST_OFFSETS = {"node1": 11, "node2": 12, "witness": 13}
HOST_ROLES = {"node1": ["node"], "node2": ["node"], "witness": ["witness"]}
# The host that statically owns the service address when the lab is built (the "before" server).
FIRST_SERVICE_OWNER = "node1"
# Inside each host: /etc/hapair/static-addresses (one CIDR per line).
STATIC_ADDRESSES = "etc/hapair/static-addresses"
# Where the software shared by every host lives (installed software, kept by `lab down`).
SHARED_VENV = "/opt/hapair/venv"
LOCK_FILE = "/run/lock/hapair-lab.lock"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    roles: tuple[str, ...]

    @property
    def netns(self) -> str:
        return NETNS_PREFIX + self.name

    @property
    def veth(self) -> str:
        # Root-side end of the host's cable; interface names are limited to 15 characters.
        return VETH_PREFIX + self.name


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path
    subnet: ipaddress.IPv4Network

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    @property
    def controller_address(self) -> str:
        return str(self.subnet.network_address + CONTROLLER_OFFSET)

    @property
    def service_address(self) -> str:
        return str(self.subnet.network_address + SERVICE_OFFSET)

    @property
    def front_door_url(self) -> str:
        return f"http://{self.service_address}/"

    @property
    def hosts(self) -> tuple[LabHost, ...]:
        return tuple(
            LabHost(name, str(self.subnet.network_address + off), tuple(HOST_ROLES[name]))
            for name, off in HOST_OFFSETS.items()
        )

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        valid = ", ".join(h.name for h in self.hosts)
        raise UsageError(f"unknown lab host {name!r}; valid hosts: {valid}")

    # Paths inside the lab directory.
    @property
    def state_file(self) -> Path:
        return self.lab_dir / "state.json"

    @property
    def inventory_file(self) -> Path:
        return self.lab_dir / "inventory.yaml"

    @property
    def ssh_dir(self) -> Path:
        return self.lab_dir / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def secrets_dir(self) -> Path:
        return self.lab_dir / "secrets"

    @property
    def marker(self) -> Path:
        # Proves a directory is a lab directory before `lab down` deletes it.
        return self.lab_dir / ".hapair-lab"

    def host_dir(self, name: str) -> Path:
        return self.lab_dir / "hosts" / name

    def host_root(self, name: str) -> Path:
        """The per-host tree whose subdirectories are bind-mounted over the host's paths."""
        return self.host_dir(name) / "root"

    def static_addresses_file(self, name: str) -> Path:
        """The host's own record of the addresses it configures at boot, like a cloud's
        static elastic-IP association. The upgrade removes the service address from it on
        node1 when keepalived takes the address over (a VIP), as it would edit a real server."""
        return self.host_root(name) / STATIC_ADDRESSES

    def console_log(self, name: str) -> Path:
        return self.host_dir(name) / "console.log"


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise UsageError(f"HAPAIR_LAB_SUBNET={text!r} is not an IPv4 network: {exc}") from exc
    if net.num_addresses < 32:
        raise UsageError(f"HAPAIR_LAB_SUBNET={text!r} is too small (need at least a /27)")
    return net


def check_lab_dir(path: Path) -> Path:
    """Refuse lab directories that `lab down` could not safely delete."""
    if not path.is_absolute() or len(path.parts) < 3:
        raise UsageError(f"HAPAIR_LAB_DIR={str(path)!r} must be an absolute path two levels deep")
    return path


def config_from_env(env: dict[str, str] | None = None) -> LabConfig:
    env = dict(os.environ) if env is None else env
    lab_dir = check_lab_dir(Path(env.get("HAPAIR_LAB_DIR") or DEFAULT_LAB_DIR))
    return LabConfig(lab_dir, parse_subnet(env.get("HAPAIR_LAB_SUBNET") or DEFAULT_SUBNET))


_ROUTE_TYPES = {"unicast", "local", "broadcast", "blackhole", "unreachable", "prohibit"}


def overlapping_route(subnet: ipaddress.IPv4Network, ip_route_output: str) -> str | None:
    """The first line of `ip route` whose destination overlaps `subnet`, else None.

    Routes through the lab's own bridge are ignored (a leftover lab is cleaned first anyway).
    The default route is not an overlap: it covers everything without claiming any of it.
    """
    for line in ip_route_output.splitlines():
        fields = line.split()
        if not fields or _route_device(fields) == BRIDGE:
            continue
        dest = fields[1] if fields[0] in _ROUTE_TYPES else fields[0]
        if dest == "default":
            continue
        try:
            net = ipaddress.IPv4Network(dest, strict=False)
        except ValueError:
            continue
        if net.overlaps(subnet):
            return line.strip()
    return None


def _route_device(fields: list[str]) -> str | None:
    return fields[fields.index("dev") + 1] if "dev" in fields[:-1] else None
