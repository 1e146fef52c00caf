"""The controller's way in: its SSH key, the lab's secrets, and the generated inventory.

Secrets are made with the `secrets` module and stored one per 0600 file under $LAB/secrets/;
the inventory refers to them by path and pins each host's SSH host key.
"""

from __future__ import annotations

import io
import os
import secrets
import string
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hapair.lab import local
from hapair.lab.config import LabConfig

_ALNUM = string.ascii_letters + string.digits
# name → generator. Alphanumeric only: the values go into URLs (REDIS_URL) and env files.
SECRET_SPECS: dict[str, tuple[str, int]] = {
    "postgres_password": (_ALNUM, 32),
    "postgres_superuser_password": (_ALNUM, 32),
    "redis_password": (_ALNUM, 32),
    "s3_access_key": (string.ascii_uppercase + string.digits, 20),
    "s3_secret_key": (_ALNUM, 40),
    "django_secret_key": (_ALNUM, 50),
}


# The site's route table (longest prefix wins; everything else goes to the frontend).
ROUTES: dict[str, tuple[str, ...]] = {
    "backend": (
        "/health/",
        "/api/articles/",
        "/api/media/",
        "/api/session/",
        "/media/",
        "/admin/",
        "/static/",
    ),
    "frontend": ("/api/health", "/api/revalidate", "/api/search", "/"),
}


def make_secret(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def ensure_secrets(cfg: LabConfig) -> dict[str, str]:
    """Create the missing secrets (existing ones are kept) and return them all."""
    cfg.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(cfg.secrets_dir, 0o700)
    values: dict[str, str] = {}
    for name, (alphabet, length) in SECRET_SPECS.items():
        path = cfg.secrets_dir / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(make_secret(alphabet, length) + "\n")
        values[name] = path.read_text().strip()
    return values


def ensure_controller_key(cfg: LabConfig) -> str:
    """The controller's ed25519 key (0600); returns the public key line."""
    cfg.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not cfg.ssh_key.exists():
        local.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "hapair-lab-controller",
                "-f",
                str(cfg.ssh_key),
            ]
        )
    os.chmod(cfg.ssh_key, 0o600)
    return Path(str(cfg.ssh_key) + ".pub").read_text().strip()


def inventory_data(cfg: LabConfig, host_keys: dict[str, str]) -> dict[str, Any]:
    """The lab's inventory, following examples/inventory.yaml (pure)."""
    key = str(cfg.ssh_key.relative_to(cfg.lab_dir))
    hosts = [
        {
            "name": h.name,
            "address": h.address,
            "roles": list(h.roles),
            "runtime": "supervisor",
            "ssh": {"user": "root", "port": 22, "key": key, "host_key": host_keys[h.name]},
        }
        for h in cfg.hosts
    ]

    def secret(name: str) -> dict[str, str]:
        return {"file": f"secrets/{name}"}

    return {
        "version": 1,
        "cluster": "cms",
        "durability": "sync",
        "hosts": hosts,
        "front_door": {
            "kind": "vip",
            "address": cfg.service_address,
            "port": 80,
            "interface": "eth0",
        },
        "services": {
            "postgres": {
                "version": 15,
                "port": 5432,
                "data_dir": "/var/lib/postgresql/15/main",
                "bin_dir": "/usr/lib/postgresql/15/bin",
                "database": "cms",
                "owner": "cms",
                "password": secret("postgres_password"),
                "superuser_password": secret("postgres_superuser_password"),
            },
            "redis": {
                "port": 6379,
                "data_dir": "/var/lib/redis",
                "config": "/etc/redis/redis.conf",
                "password": secret("redis_password"),
            },
            "storage": {
                "backend": "s3",
                "port": 9000,
                "data_dir": "/var/lib/hapair/s3",
                "access_key": secret("s3_access_key"),
                "secret_key": secret("s3_secret_key"),
                "buckets": ["media-public", "media-private"],
            },
            "backend": {
                "port": 8000,
                "health": "/health/",
                "app_dir": "/opt/cms/backend",
                "env_file": "/opt/cms/backend.env",
            },
            "frontend": {"port": 3000, "health": "/api/health", "app_dir": "/opt/cms/frontend"},
            "http_lb": {
                "kind": "nginx",
                "port": 80,
                "routes": {k: list(v) for k, v in ROUTES.items()},
            },
        },
    }


def render_inventory(data: dict[str, Any]) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    buf = io.StringIO()
    buf.write("# Generated by `hapair lab up`: the lab's hosts with pinned SSH host keys.\n")
    buf.write("# Paths (key, secrets) are relative to this file.\n")
    yaml.dump(data, buf)
    return buf.getvalue()
