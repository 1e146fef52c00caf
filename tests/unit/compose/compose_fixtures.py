"""Helpers for the compose tests: the idp-cms fixture (the original deployment's compose file
and env file), a recorded transcript of what discovery reads from its server
(fixtures/idp-cms/recorded/), golden files, and generate() parameters."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hapair.compose.draft import TODO
from hapair.exec.recording import RecordingTransport, Reply

FIXTURE = Path(__file__).parent / "fixtures" / "idp-cms"
RECORDED = FIXTURE / "recorded"
EXPECTED = FIXTURE / "expected"
COMPOSE_FILE = FIXTURE / "docker-compose.yml"
ENV_FILE = FIXTURE / ".env.node1"

REMOTE_FILE = "/opt/idp-cms/docker-compose.yml"
REMOTE_ENV = "/opt/idp-cms/.env.node1"
BASE = ["docker", "compose", "-p", "idp-cms", "-f", REMOTE_FILE, "--env-file", REMOTE_ENV]
PS_IDS = ["docker", "ps", "-a", "--filter", "label=com.docker.compose.project",
          "--format", "{{.ID}}"]

# Every secret of .env.node1: none may appear in any output.
SECRETS = [
    "pg-Fixture-Secret-7f3a",
    "redis-Fixture-Secret-91bc",
    "minio-Fixture-Secret-c0de",
    "django-Fixture-Secret-key-5e6f",
    "idp-minio-admin",  # MINIO_ROOT_USER is the S3 access key
]


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def container_id(name: str) -> str:
    for row in json.loads(recorded("inspect.json")):
        if row["Name"] == f"/idp-cms-{name}-1":
            return row["Id"][:12]
    raise KeyError(name)


def script_host(t: RecordingTransport, *, base: list[str] = BASE) -> RecordingTransport:
    """Reply to discovery's commands as the original server did."""
    ids = recorded("ps-ids.txt").split()
    pg, redis = container_id("postgres"), container_id("redis")
    t.on(["docker", "compose", "version"], stdout=recorded("compose-version.txt"))
    t.on(PS_IDS, stdout=recorded("ps-ids.txt"))
    t.on(["docker", "inspect", *ids], stdout=recorded("inspect.json"))
    t.on([*base, "config", "--format", "json"], stdout=recorded("config.json"))
    t.on([*base, "ps", "-a", "--format", "json"], stdout=recorded("ps.json"))
    t.on(["docker", "exec", pg, "postgres", "--version"], stdout=recorded("postgres-version.txt"))
    t.on(["docker", "exec", pg, "cat", "/var/lib/postgresql/data/pgdata/PG_VERSION"],
         stdout=recorded("pg-data-version.txt"))
    t.on(["docker", "exec", redis, "redis-server", "--version"],
         stdout=recorded("redis-version.txt"))
    return t


def original_host_transport() -> RecordingTransport:
    """The original server; anything not scripted fails loudly (exit 99)."""
    return script_host(RecordingTransport("node1", default=Reply(returncode=99,
                                                                 stderr="not scripted")))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked"


def golden(name: str, actual: str) -> None:
    """Compare with expected/NAME; HAPAIR_UPDATE_GOLDEN=1 rewrites it instead."""
    path = EXPECTED / name
    if os.environ.get("HAPAIR_UPDATE_GOLDEN") == "1":
        path.write_text(actual)
    assert actual == path.read_text(), f"differs from {path} (HAPAIR_UPDATE_GOLDEN=1 rewrites)"


# --- generated files ---------------------------------------------------------------------------

# Distinctive generated-file secrets: they may appear only in 0600 config files.
HA_SECRETS = ["pg-super-Gen-1", "repl-Gen-2", "redis-Gen-3", "sentinel-Gen-4", "vrrp-Gen-5"]


def generate_params(root: str = "/opt/hapair", vip: bool = True):  # -> GenerateParams
    from hapair.components.common import Credential, Plain
    from hapair.compose.collect import discover_offline
    from hapair.compose.generate import GenerateParams
    from hapair.compose.generate_configs import HaSecrets, HostSpec, Vip

    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    secrets = HaSecrets(
        superuser=Credential("idp", Plain(HA_SECRETS[0])),
        replication=Credential("replicator", Plain(HA_SECRETS[1])),
        redis_password=Plain(HA_SECRETS[2]),
        sentinel_password=Plain(HA_SECRETS[3]),
        vrrp_secret=Plain(HA_SECRETS[4]),
    )
    return GenerateParams(
        cluster="idp-cms", stack=stack,
        nodes=(HostSpec("node1", "10.0.0.11"), HostSpec("node2", "10.0.0.12")),
        witness=HostSpec("witness", "10.0.0.13"), secrets=secrets,
        vip=Vip("10.0.0.10", 24, "eth0", 80, "/health/") if vip else None, root=root,
    )


# --- the draft, filled in as a user would ------------------------------------------------------

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
_ANSWERS: dict[tuple[Any, ...], Any] = {
    ("hosts", 0, "address"): "10.0.0.11", ("hosts", 1, "address"): "10.0.0.12",
    ("hosts", 2, "address"): "10.0.0.13", ("front_door", "address"): "10.0.0.10",
    ("front_door", "interface"): "eth0",
    ("services", "http_lb", "routes", "backend"): ["/health/", "/admin/", "/api/articles/"],
    ("services", "http_lb", "routes", "frontend"): ["/api/health", "/"],
}
_FILES = ("keys/id_ed25519", "secrets/postgres_password", "secrets/postgres_superuser_password",
          "secrets/redis_password", "secrets/s3_access_key", "secrets/s3_secret_key",
          "root/.ssh/id_ed25519")


def fill(node: Any, path: tuple[Any, ...] = ()) -> Any:
    """Replace each <TODO> as a user would."""
    if path in _ANSWERS:
        return _ANSWERS[path]
    if isinstance(node, dict):
        return {k: fill(v, (*path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, (*path, i)) for i, v in enumerate(node)]
    if node == TODO:
        return {"key": "keys/id_ed25519", "host_key": HOST_KEY}[path[-1]]
    return node


def filled_draft(text: str, base_dir: Path) -> str:
    """The draft with its TODOs answered and the key/secret files it names created (0600)
    under base_dir: a valid inventory text."""
    for rel in _FILES:
        path = base_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
        path.chmod(0o600)
    yaml = YAML(typ="safe", pure=True)
    data = fill(yaml.load(text))
    if not str(data["hosts"][0]["ssh"]["key"]).startswith("keys/"):  # the draft from SSH
        data["hosts"][0]["ssh"]["key"] = str(base_dir / "root/.ssh/id_ed25519")
        for host in data["hosts"][1:]:
            host["ssh"]["key"] = "keys/id_ed25519"
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
