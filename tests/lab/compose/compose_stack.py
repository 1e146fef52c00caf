"""The single-server compose stack the compose lab test upgrades, and its inventory (pure).

Modelled on the original deployment, with the images the image kit provides
(tests/integration/compose/image_kit.py): PostgreSQL 17 on a named volume with PGDATA in a
subdirectory, Redis with a config written at start from the env file's password, an app
service pointed at both by service name (a busybox httpd standing in for the Django backend:
the upgrade only re-points and recreates it), a fixed project name, an env file per node.
"""

from __future__ import annotations

from typing import Any

PROJECT = "cms"
APP_DIR = "/opt/cms/compose"  # per host in the lab (hapair.lab.layout.BIND_PATHS /opt/cms)
COMPOSE_FILE = f"{APP_DIR}/docker-compose.yml"
PG_IMAGE = "postgres:17"
REDIS_IMAGE = "redis:7.2-alpine"
PGDATA = "/var/lib/postgresql/data/pgdata"


def compose_file(app_image: str) -> str:
    return f"""# The CMS on one server (hapair's compose lab test).
services:
  postgres:
    image: {PG_IMAGE}
    restart: unless-stopped
    env_file: .env.node1
    environment:
      POSTGRES_DB: cms
      POSTGRES_USER: cms
      PGDATA: {PGDATA}
    volumes:
      - pgdata:/var/lib/postgresql/data
    ports:
      - "5432:5432"   # published on every address, as the original did
    networks: [cms]

  redis:
    image: {REDIS_IMAGE}
    restart: unless-stopped
    env_file: .env.node1
    # the config is generated at start so the password comes from the env file (0600: the
    # image's entrypoint runs everything with umask 0077, then redis-server as `redis`)
    command: >
      sh -c 'printf "requirepass %s\\nappendonly yes\\n" "$$REDIS_PASSWORD" > /tmp/redis.conf
      && chown redis /tmp/redis.conf && exec docker-entrypoint.sh redis-server /tmp/redis.conf'
    volumes:
      - redis_data:/data
    networks: [cms]

  backend:
    image: {app_image}
    restart: unless-stopped
    environment:
      DJANGO_SETTINGS_MODULE: config.settings
      POSTGRES_HOST: postgres
      POSTGRES_PORT: "5432"
      REDIS_HOST: redis
    command: [httpd, -f, -p, "8000", -h, /]
    networks: [cms]

networks:
  cms: {{}}

volumes:
  pgdata: {{}}
  redis_data: {{}}
"""


def env_file(pg_password: str, redis_password: str) -> str:
    return f"POSTGRES_PASSWORD={pg_password}\nREDIS_PASSWORD={redis_password}\n"


def compose_inventory(lab_inventory: dict[str, Any], node1: str) -> dict[str, Any]:
    """The lab's own inventory (hosts, pinned keys, secrets), turned into the compose
    stack's: every host on runtime compose, the services as the stack has them."""
    inv = dict(lab_inventory)
    hosts = []
    for h in lab_inventory["hosts"]:
        host = {k: v for k, v in h.items() if k != "supervisor"}
        host["runtime"] = "compose"
        if "witness" in h["roles"]:
            host["compose"] = {"project": f"{PROJECT}-hapair",
                               "files": [f"/opt/hapair/{PROJECT}/{h['name']}/"
                                         "docker-compose.hapair.yml"]}
        else:
            host["compose"] = {"project": PROJECT, "files": [COMPOSE_FILE],
                               "env_files": [f"{APP_DIR}/.env.{h['name']}"],
                               "services": {"postgres": "postgres", "redis": "redis",
                                            "backend": "backend"}}
        hosts.append(host)
    inv["hosts"] = hosts
    inv["front_door"] = {"kind": "static", "address": node1, "port": 80}
    services = dict(lab_inventory["services"])
    password = services["postgres"]["password"]
    services["postgres"] = {
        "version": 17, "port": 5432, "data_dir": PGDATA,
        "bin_dir": "/usr/lib/postgresql/17/bin", "database": "cms", "owner": "cms",
        # the official image's superuser is POSTGRES_USER (cms): one password for both
        "password": password, "superuser_password": password,
    }
    services["redis"] = {"port": 6379, "data_dir": "/data",
                         "config": "/etc/hapair-redis/redis.conf",
                         "password": services["redis"]["password"]}
    inv["services"] = services
    return inv
