"""A compose pair for the backup workflows: each node's host is a RecordingTransport, and the
commands inside hapair-patroni are the host's `docker compose … exec -T` lines, so tests
assert the exact argument lists that reach each host."""

from __future__ import annotations

import json
from pathlib import Path

from backup_fakes import DUMP_OUT, PASSWORD, write_inventory
from ruamel.yaml import YAML

from hapair.exec.recording import Call, RecordingTransport
from hapair.inventory import Host, Inventory, load_inventory
from hapair.workflows.backup import Pair, Settings, pair_from_inventory

BIN = "/usr/lib/postgresql/17/bin"
SOCK = "/var/run/postgresql"
BASE = "/var/lib/hapair/backups"
OWNER = "cms"
ADDRESS = {"node1": "10.99.0.11", "node2": "10.99.0.12"}
DIR_ID = "2049:131073"  # the backup directory's device:inode, the same in both views
CLUSTER = json.dumps({"members": [
    {"name": "node1", "role": "leader", "state": "running", "host": "10.99.0.11", "port": 5432,
     "timeline": 2},
    {"name": "node2", "role": "sync_standby", "state": "streaming", "host": "10.99.0.12",
     "port": 5432, "timeline": 2, "lag": 0},
], "scope": "cms"})

__all__ = ["DUMP_OUT", "PASSWORD"]


def write_compose_inventory(root: Path, *, native: tuple[str, ...] = ()) -> Path:
    """examples/inventory.yaml turned into a compose stack's (hosts in `native` stay native)."""
    path = write_inventory(root)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(path.read_text())
    for h in data["hosts"]:
        if h["name"] in native:
            continue
        h["runtime"] = "compose"
        if h["name"] == "witness":
            h["compose"] = {"project": "cms-hapair",
                            "files": ["/opt/hapair/cms/witness/docker-compose.hapair.yml"]}
        else:
            h["compose"] = {"project": "cms", "files": ["/opt/cms/docker-compose.yml"],
                            "env_files": [f"/opt/cms/.env.{h['name']}"],
                            "services": {"postgres": "postgres", "backend": "backend"}}
    data["services"]["postgres"].update(version=17, bin_dir=BIN,
                                        data_dir="/var/lib/postgresql/data/pgdata")
    with path.open("w") as fh:
        yaml.dump(data, fh)
    return path


def compose_host(name: str) -> RecordingTransport:
    """A host with Docker Compose v2 and Patroni's REST API answering on node1."""
    t = RecordingTransport(name)
    t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
    t.on(curl("node1"), stdout=CLUSTER)
    t.on(["stat", "-c", "%d:%i", "--", BASE], stdout=f"{DIR_ID}\n")
    t.on(box(name, ["stat", "-c", "%d:%i", "--", BASE]), stdout=f"{DIR_ID}\n")
    t.on(box(name, ["id", "-u", "postgres"]), stdout="999\n")
    return t


def compose_pair(inv_path: Path, t1: RecordingTransport, t2: RecordingTransport,
                 settings: Settings | None = None) -> Pair:
    hosts = {"node1": t1, "node2": t2}

    def transport_for(_inv: Inventory, host: Host) -> RecordingTransport:
        return hosts[host.name]

    return pair_from_inventory(load_inventory(inv_path), settings or Settings(), transport_for)


def curl(node: str) -> list[str]:
    return ["curl", "-sS", "-f", "--max-time", "5", f"http://{ADDRESS[node]}:8008/cluster"]


def box(host: str, argv: list[str], user: str | None = None,
        env: dict[str, str] | None = None) -> list[str]:
    """What the host runs for `argv` inside its hapair-patroni container."""
    env_opts = [o for k, v in sorted((env or {}).items()) for o in ("-e", f"{k}={v}")]
    return ["docker", "compose", "-p", "cms-hapair", "-f",
            f"/opt/hapair/cms/{host}/docker-compose.hapair.yml", "exec", "-T",
            *(["-u", user] if user else []), *env_opts, "hapair-patroni", *argv]


def pg_args(host: str = SOCK) -> list[str]:
    return ["-h", host, "-p", "5432", "-U", OWNER, "-w"]


def psql(db: str = "postgres", **variables: str) -> list[str]:
    argv = [f"{BIN}/psql", *pg_args(), "-d", db, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for k, v in sorted(variables.items()):
        argv += ["-v", f"{k}={v}"]
    return [*argv, "-f", "-"]


def written(t: RecordingTransport, path: str) -> Call:
    """The container's write_file of `path` (a `sh -c` with the data on stdin)."""
    found = [c for c in t.calls if c.kind == "run" and "sh" in c.argv and path in c.argv]
    assert len(found) == 1, f"{path}: {len(found)} writes"
    return found[-1]


def never_in_argv(secret: str, *ts: RecordingTransport) -> None:
    for t in ts:
        for c in t.calls:
            assert secret not in " ".join(c.wrapped), c.argv
