"""Recognise what each service of a compose project is, from its image, command, environment
and ports (pure). Each match carries a one-line reason; a role that only one service may have
(postgres, redis, …) matched by several services stays undecided rather than guessed.

Order matters: a Celery beat service runs the Django image with DJANGO_SETTINGS_MODULE, so the
scheduler and worker rules are tried before the backend rule, and the first rule that matches
a service decides its role.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hapair.compose.model import (
    ROLES,
    SINGLE_ROLES,
    Mount,
    Project,
    Role,
    RoleMatch,
    Service,
    Undecided,
)

POSTGRES_IMAGES = {"postgres", "postgis", "postgresql", "timescaledb", "timescaledb-ha"}
REDIS_IMAGES = {"redis", "redis-stack-server", "valkey", "keydb"}
LB_IMAGES = {"nginx", "nginx-unprivileged", "openresty", "haproxy", "caddy", "traefik"}
_BACKEND_CMD = re.compile(r"\b(gunicorn|uvicorn|daphne|uwsgi|hypercorn)\b|manage\.py\s+runserver")
_FRONTEND_CMD = re.compile(
    r"\bnext\s+start\b|\b(npm|yarn|pnpm)\s+(run\s+)?start\b|\bnode\s+\S*server\.js\b"
)
_MIGRATE = re.compile(r"\b(manage\.py|django-admin)\s+migrate\b|\balembic\s+upgrade\b")
_CELERY = re.compile(r"\bcelery\b")
_EMBEDDED_BEAT = re.compile(r"(^|\s)(-B|--beat)(\s|$)")


def image_name(image: str | None) -> str:
    """"quay.io/minio/minio:RELEASE.x" → "minio"; "postgres:17@sha256:…" → "postgres"."""
    if not image:
        return ""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def image_tag(image: str | None) -> str | None:
    if not image:
        return None
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def runs_migrate(service: Service) -> bool:
    return bool(_MIGRATE.search(service.command_text))


def embeds_beat(service: Service) -> bool:
    """A Celery worker started with -B runs the scheduler inside it."""
    text = service.command_text
    return bool(_CELERY.search(text) and " worker" in text and _EMBEDDED_BEAT.search(text))


def _postgres(s: Service) -> str | None:
    name = image_name(s.image)
    if name in POSTGRES_IMAGES:
        return f"image {s.image}"
    if "POSTGRES_PASSWORD" in s.environment and not s.command_text:
        return "POSTGRES_PASSWORD in its environment"
    return None


def _redis(s: Service) -> str | None:
    if image_name(s.image) in REDIS_IMAGES and "--sentinel" not in s.command_text:
        return f"image {s.image}"
    return None


def _storage_setup(s: Service) -> str | None:
    if image_name(s.image) == "mc":
        return f"image {s.image} (the MinIO client): a one-shot setup job"
    if re.search(r"\bmc\s+(mb|alias)\b", s.command_text):
        return "runs `mc mb`/`mc alias`: a one-shot setup job"
    return None


def _storage(s: Service) -> str | None:
    if image_name(s.image) == "minio" and "server" in (s.command or ()):
        return f"image {s.image} running `minio server`"
    return None


def _scheduler(s: Service) -> str | None:
    text = s.command_text
    if _CELERY.search(text) and re.search(r"\bbeat\b", text):
        return "runs `celery … beat` (the scheduler)"
    return None


def _worker(s: Service) -> str | None:
    text = s.command_text
    if _CELERY.search(text) and re.search(r"\bworker\b", text):
        return "runs `celery … worker`"
    return None


def _backend(s: Service) -> str | None:
    if m := _BACKEND_CMD.search(s.command_text):
        return f"runs {m.group(0)}"
    if "DJANGO_SETTINGS_MODULE" in s.environment:
        return "DJANGO_SETTINGS_MODULE in its environment"
    return None


def _frontend(s: Service) -> str | None:
    if m := _FRONTEND_CMD.search(s.command_text):
        return f"runs `{m.group(0)}`"
    if any(k.startswith("NEXT_PUBLIC_") for k in s.environment):
        return "NEXT_PUBLIC_* variables in its environment (Next.js)"
    if image_name(s.image) == "node" and "3000" in s.expose:
        return "node image exposing 3000"
    return None


def _http_lb(s: Service) -> str | None:
    if image_name(s.image) in LB_IMAGES and any(p.target in (80, 443) for p in s.ports):
        return f"image {s.image} publishing port 80/443"
    return None


RULES: tuple[tuple[Role, Callable[[Service], str | None]], ...] = (
    ("postgres", _postgres),
    ("redis", _redis),
    ("storage_setup", _storage_setup),
    ("storage", _storage),
    ("scheduler", _scheduler),
    ("worker", _worker),
    ("backend", _backend),
    ("frontend", _frontend),
    ("http_lb", _http_lb),
)


def classify(project: Project) -> tuple[tuple[RoleMatch, ...], tuple[Undecided, ...]]:
    """(the services' roles, the one-service roles that several services matched)."""
    found: list[RoleMatch] = []
    for service in project.services.values():
        for role, rule in RULES:
            if (reason := rule(service)) is not None:
                found.append(RoleMatch(role, service.name, reason))
                break
    undecided = []
    for role in SINGLE_ROLES:
        names = tuple(sorted(m.service for m in found if m.role == role))
        if len(names) > 1:
            undecided.append(Undecided(role, names))
    ambiguous = {u.role for u in undecided}
    # a stable order whatever the order of the services in the file (config JSON sorts them)
    kept = sorted((m for m in found if m.role not in ambiguous),
                  key=lambda m: (ROLES.index(m.role), m.service))
    return tuple(kept), tuple(undecided)


# --- facts about a recognised service (used by findings, the draft and the generated files) ----

DEFAULT_PGDATA = "/var/lib/postgresql/data"


def pgdata(postgres: Service) -> str:
    """PostgreSQL's data directory inside the container (the image's PGDATA default)."""
    return postgres.environment.get("PGDATA") or DEFAULT_PGDATA


def data_mount(service: Service, path: str) -> Mount | None:
    """The mount that holds `path` inside the container (None: the container's own layer)."""
    return service.mount_at(path)


def redis_data_dir(redis: Service) -> str:
    return "/data"  # the official image's WORKDIR and `dir`


def is_alpine(image: str | None) -> bool:
    return "alpine" in (image_tag(image) or "")
