"""The single-server compose stack the compose lab test upgrades, and its inventory (pure).

Modelled on the original deployment, with the images the image kit provides
(tests/integration/compose/image_kit.py): PostgreSQL 17 on a named volume with PGDATA in a
subdirectory, Redis with a config written at start from the env file's password, an app
service pointed at both by service name (a busybox httpd standing in for the Django backend:
the upgrade only re-points and recreates it), a fixed project name, an env file per node.
`compose_file(image, app="cms")`: the reference CMS backend as the app instead (its image from
the kit, tests/lab/compose/cms_app.py), with an S3 stand-in; its env file is cms_env_file's.
"""

from __future__ import annotations

from typing import Any

PROJECT = "cms"
APP_DIR = "/opt/cms/compose"  # per host in the lab (hapair.lab.layout.BIND_PATHS /opt/cms)
COMPOSE_FILE = f"{APP_DIR}/docker-compose.yml"
PG_IMAGE = "postgres:17"
REDIS_IMAGE = "redis:7.2-alpine"
PGDATA = "/var/lib/postgresql/data/pgdata"


APPS = ("busybox", "cms")
CMS_IMAGE = "hapair-e2e/cms:local"  # image_recipes.CMS_IMAGE: the backend and rclone
S3_PORT = 9000
APP_PORT = 80  # the `cms` app's gunicorn, published on the node (the front door's port)


def compose_file(app_image: str, app: str = "busybox") -> str:
    """The stack; `app`: "busybox" (an httpd standing in, the default) or "cms" (the
    reference CMS backend on `app_image`, with an S3 stand-in: _cms_compose_file)."""
    if app not in APPS:
        raise ValueError(f"app {app!r}: one of {', '.join(APPS)}")
    if app == "cms":
        return _cms_compose_file(app_image)
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


# --- the reference CMS as the app (compose_file(image, app="cms")) ----------------------------


def _cms_compose_file(image: str) -> str:
    """The same data services, then the CMS backend (gunicorn on :8000, published on the
    node's port 80: the front door) and an S3 stand-in (`rclone serve s3`, as the native
    lab's) on a volume of its own. The app reaches PostgreSQL and Redis by service name, from
    its own `environment:` (what the upgrade re-points at hapair-router); its secrets come
    from the env file, REDIS_URL's password by interpolation (`--env-file`)."""
    # the default file's data services and volumes, as they are
    data, tail = compose_file(PG_IMAGE).split("  backend:\n", 1)
    volumes = tail.split("volumes:\n", 1)[1]
    head = data.replace("(hapair's compose lab test)", "(hapair's compose lab: the reference CMS)")
    return head + f"""  storage:
    image: {image}
    restart: unless-stopped
    env_file: .env.node1
    # rclone takes the key pair from its environment (RCLONE_AUTH_KEY, one quoted CSV
    # field), never from argv; each top-level directory is a bucket
    command:
      - sh
      - -c
      - >-
        mkdir -p /data/media-public /data/media-private &&
        export RCLONE_AUTH_KEY="\\"$$MINIO_ACCESS_KEY,$$MINIO_SECRET_KEY\\"" &&
        exec rclone serve s3 --addr :{S3_PORT} --config /dev/null --cache-dir /tmp/rclone /data
    volumes:
      - s3_data:/data
    networks: [cms]

  backend:
    image: {image}
    restart: unless-stopped
    env_file: .env.node1
    environment:
      POSTGRES_HOST: postgres
      POSTGRES_PORT: "5432"
      POSTGRES_DB: cms
      POSTGRES_USER: cms
      REDIS_URL: redis://:${{REDIS_PASSWORD}}@redis:6379/0
      MINIO_ENDPOINT: http://storage:{S3_PORT}
      DJANGO_ALLOWED_HOSTS: "*"
      WEB_CONCURRENCY: "3"
    # migrations at every start, as the original deployment ran them (defect #24): the
    # upgrade moves them into a one-shot `migrate` service that `hapair migrate` runs
    command: [sh, -c, "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py
              cms_backend.wsgi:application --bind 0.0.0.0:8000"]
    ports:
      - "{APP_PORT}:8000"
    depends_on: [postgres, redis, storage]
    networks: [cms]

networks:
  cms: {{}}

volumes:
{volumes}  s3_data: {{}}
"""


def cms_env_file(pg_password: str, redis_password: str, s3_access_key: str,
                 s3_secret_key: str, django_secret_key: str) -> str:
    """The env file of the `cms` app (0600 on the node): the data services' passwords and
    the app's secrets. Values are alphanumeric (the lab's secrets): no quoting needed."""
    return (env_file(pg_password, redis_password)
            + f"MINIO_ACCESS_KEY={s3_access_key}\nMINIO_SECRET_KEY={s3_secret_key}\n"
            + f"DJANGO_SECRET_KEY={django_secret_key}\n")


def compose_argv(*args: str) -> list[str]:
    """docker-compose on node1 as hapair runs it: with the env file, which the `cms` app's
    file needs for interpolation (REDIS_URL's password)."""
    return ["docker-compose", "-p", PROJECT, "-f", COMPOSE_FILE, "--env-file",
            f"{APP_DIR}/.env.node1", *args]


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
