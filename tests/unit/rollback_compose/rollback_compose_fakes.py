"""A compose pair as `hapair upgrade --experimental-compose` leaves it, scripted on
RecordingTransports: node1 (the first node, Patroni's leader) with the user's compose file as
edited and its `.hapair-before` original, node2 and the witness; an inventory of compose hosts
with distinctive secrets; a completed upgrade in the journal."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from hapair.components.patroni.probe import Member
from hapair.exec.journal import Journal
from hapair.exec.recording import RecordingTransport, Reply, StoredFile
from hapair.inventory import load_inventory
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams

REPO = Path(__file__).resolve().parents[3]
PROJECT = "cms"
APP_DIR = "/opt/cms/compose"
FILE = f"{APP_DIR}/docker-compose.yml"
PGDATA = "/var/lib/postgresql/data/pgdata"
ADDRESSES = {"node1": "10.0.0.11", "node2": "10.0.0.12", "witness": "10.0.0.13"}
SECRETS = {"secrets/postgres_password": "Owner-Pw-61",
           "secrets/postgres_superuser_password": "Owner-Pw-61",
           "secrets/redis_password": "Redis-Pw-62",
           "secrets/s3_access_key": "S3-Key-63", "secrets/s3_secret_key": "S3-Secret-64"}
DOCKER_V2 = ["docker", "compose", "version"]


def app(host: str) -> list[str]:
    return ["docker", "compose", "-p", PROJECT, "-f", FILE, "--env-file",
            f"{APP_DIR}/.env.{host}"]


def pair(host: str) -> list[str]:
    return ["docker", "compose", "-p", f"{PROJECT}-hapair", "-f",
            f"/opt/hapair/{PROJECT}/{host}/docker-compose.hapair.yml"]


def ps(project: str, service: str | None = None, *, all_: bool = False) -> list[str]:
    argv = ["docker", "ps", "--format", "{{.Names}}", "--filter",
            f"label=com.docker.compose.project={project}"]
    if service:
        argv += ["--filter", f"label=com.docker.compose.service={service}"]
    if all_:
        argv.insert(2, "-a")
    return argv


ORIGINAL = """# The CMS on one server.
services:
  postgres:
    image: postgres:17
    restart: unless-stopped
    env_file: .env.node1
    environment:
      POSTGRES_DB: cms
      POSTGRES_USER: cms
      PGDATA: /var/lib/postgresql/data/pgdata
    volumes:
      - pgdata:/var/lib/postgresql/data
    ports:
      - "5432:5432"
  redis:
    image: redis:7.2-alpine
    restart: unless-stopped
    command: redis-server --appendonly yes
    volumes:
      - redis_data:/data
  backend:
    image: cms-backend
    restart: unless-stopped
    environment:
      POSTGRES_HOST: postgres
      REDIS_HOST: redis
    depends_on: [postgres, redis]
  worker:
    image: cms-backend
    command: celery worker
    environment:
      POSTGRES_HOST: postgres
  docs:
    image: nginx
volumes:
  pgdata: {}
  redis_data: {}
"""

EDITED = """# The CMS on one server.
services:
  postgres:
    image: postgres:17
    restart: "no"
    profiles: [single-node]
    stop_grace_period: 120s
    env_file: .env.node1
    environment:
      POSTGRES_DB: cms
      POSTGRES_USER: cms
      PGDATA: /var/lib/postgresql/data/pgdata
    volumes:
      - pgdata:/var/lib/postgresql/data
    ports:
      - "10.0.0.11:5432:5432"
  redis:
    image: redis:7.2-alpine
    restart: "no"
    profiles: [single-node]
    command: redis-server --appendonly yes
    volumes:
      - redis_data:/data
  backend:
    image: cms-backend
    restart: unless-stopped
    environment:
      POSTGRES_HOST: hapair-router
      REDIS_HOST: hapair-router
  worker:
    image: cms-backend
    command: celery worker
    environment:
      POSTGRES_HOST: hapair-router
  docs:
    image: nginx
volumes:
  pgdata: {}
  redis_data: {}
"""


def write_inventory(root: Path, *, vip: bool = False) -> Path:
    """examples/inventory.yaml turned into a compose pair's (as the lab's compose tests do),
    with its key and 0600 secret files under `root`."""
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load((REPO / "examples" / "inventory.yaml").read_text())
    hosts = []
    for h in data["hosts"]:
        host = {k: v for k, v in h.items() if k != "supervisor"}
        host["address"] = ADDRESSES[h["name"]]
        host["runtime"] = "compose"
        if "witness" in h["roles"]:
            host["compose"] = {"project": f"{PROJECT}-hapair",
                               "files": [f"/opt/hapair/{PROJECT}/{h['name']}/"
                                         "docker-compose.hapair.yml"]}
        else:
            host["compose"] = {"project": PROJECT, "files": [FILE],
                               "env_files": [f"{APP_DIR}/.env.{h['name']}"],
                               "services": {"postgres": "postgres", "redis": "redis",
                                            "backend": "backend", "worker": ["worker"]}}
        hosts.append(host)
    data["hosts"] = hosts
    data["front_door"] = ({"kind": "vip", "address": "10.0.0.10", "port": 80,
                           "interface": "eth0"} if vip else
                          {"kind": "static", "address": ADDRESSES["node1"], "port": 80})
    pg = data["services"]["postgres"]
    pg.update({"version": 17, "data_dir": PGDATA, "bin_dir": "/usr/lib/postgresql/17/bin"})
    path = root / "inventory.yaml"
    with path.open("w") as fh:
        yaml.dump(data, fh)
    for rel, value in {"lab-ssh/id_ed25519": "key", **SECRETS}.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(value + "\n")
        f.chmod(0o600)
    return path


def completed_upgrade(runs: Path) -> None:
    with Journal.create(runs, "upgrade") as j:
        j.write("run.start", plan="upgrade", mode="apply", digest="x", steps=[])
        j.write("run.end", result="ok")


def rollback_run(runs: Path, steps: list[str], result: str) -> None:
    with Journal.create(runs, "rollback") as j:
        j.write("run.start", plan="rollback", mode="apply", digest="x", steps=steps)
        for sid in steps:
            j.write("step.start", step=sid, host="h", kind="command")
            j.write("step.end", step=sid, host="h", kind="command", result="ok", reason="r")
        j.write("run.end", result=result)


def hosts() -> dict[str, RecordingTransport]:
    """Every host: compose v2, every unscripted command succeeds silently. node1 runs the
    pair's hapair-patroni and hapair-redis (a master answering the password)."""
    out = {}
    for name in ADDRESSES:
        t = RecordingTransport(name, default=Reply(0))
        t.on(DOCKER_V2, stdout="Docker Compose version v2.29.7\n")
        out[name] = t
    node1 = out["node1"]
    node1.files[FILE] = StoredFile(EDITED.encode())
    node1.files[FILE + ".hapair-before"] = StoredFile(ORIGINAL.encode())
    for service in ("hapair-patroni", "hapair-redis"):
        node1.on(ps(f"{PROJECT}-hapair", service), stdout=f"cms-hapair-{service}-1\n")
    node1.on([*pair("node1"), "exec", "-T", "hapair-redis", "redis-cli", "-p", "6379"],
             stdout="OK\n# Replication\nrole:master\nconnected_slaves:1\n")
    return out


def members(leader: str = "node1", *, leaders: int = 1) -> list[Member]:
    other = "node2" if leader == "node1" else "node1"
    return [Member(leader, "leader", "running"),
            Member(other, "leader" if leaders == 2 else "sync_standby", "streaming")]


def context(root: Path, transports: dict[str, RecordingTransport] | None = None, *,
            vip: bool = False) -> tuple[WorkflowContext, UpgradeParams]:
    inv = load_inventory(write_inventory(root, vip=vip))
    ctx = WorkflowContext(inv, dict(transports or hosts()))  # type: ignore[arg-type]
    return ctx, UpgradeParams(inv, ctx.generated)
