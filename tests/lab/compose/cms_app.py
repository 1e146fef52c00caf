"""The reference CMS (cms/backend) as the compose lab's app: its image, made by the image kit
from the repository's own files; the CMS stack on node1; probes of the app and its data.

    cms_app.ensure_cache(cp.NODE_IMAGES, [cp.PATRONI])  # built once in a private engine
    cms_app.load_images(engines)           # then loaded into the lab hosts' engines
    cms_app.start_single_server(lab)       # compose_stack's `cms` app up on node1, migrated
    lost = cms_app.article_problems(acks, cms_app.article_rows(engines, "node1", acks))

The lab's engines have no network: an image missing from the kit's cache is built first in a
private engine (tests/integration/compose/private_engine.py), which can reach Debian and PyPI.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from functools import cache

import compose_pair as cp
import compose_stack as cs
import httpx
from lab_helpers import REPO, Lab

from hapair.drill.records import ArticleAck
from hapair.lab.transport import LabHostTransport

sys.path.insert(0, str(REPO / "tests" / "integration" / "compose"))
import image_kit  # noqa: E402
import private_engine  # noqa: E402
from image_recipes import CMS_IMAGE, IMAGES, ROOTFS, ImageSpec, cms_image  # noqa: E402

log = logging.getLogger(__name__)

BACKEND = REPO / "cms" / "backend"


def backend_files() -> dict[str, str]:
    """cms/backend's source files (no bytecode, no caches) as `backend/<path>` → text."""
    files = {}
    for path in sorted(BACKEND.rglob("*")):
        rel = path.relative_to(BACKEND)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            files[f"backend/{rel.as_posix()}"] = path.read_text()
    return files


@cache
def image_spec() -> ImageSpec:
    return cms_image(backend_files())


def extras(*more: ImageSpec) -> tuple[ImageSpec, ...]:
    """The recipes ensure_images needs besides the kit's own: the CMS image, and `more`."""
    return (image_spec(), *more)


def missing_from_cache(names: Iterable[str], extra: Iterable[ImageSpec] = ()) -> list[str]:
    """The names whose current tarball is not in the kit's cache (pure look-up, no engine)."""
    registry: dict[str, image_kit.Spec] = {}
    for spec in (*ROOTFS, *IMAGES, *extras(*extra)):
        for name in spec.names:
            registry[name] = spec
    cas = image_kit.local_cas()
    missing = []
    for name in names:
        spec = registry[name]
        if isinstance(spec, ImageSpec):
            key = image_kit.spec_key(spec, registry, cas)
            tar = image_kit.CACHE / "images" / f"{image_kit.slug(spec.names[0])}-{key}.tar"
            if not tar.exists():
                missing.append(name)
    return missing


def ensure_cache(names: Iterable[str], extra: Iterable[ImageSpec] = ()) -> None:
    """Every image in `names` (plus the CMS image) in the kit's cache: the missing ones built
    in a private engine. Nothing to do (and no engine started) when all are cached."""
    extra = tuple(extra)
    missing = missing_from_cache((*names, CMS_IMAGE), extra)
    if not missing:
        return
    for why in (private_engine.available(), image_kit.available()):
        if why is not None:
            raise RuntimeError(f"cannot build {missing}: {why}")
    log.info("building %s in a private engine", ", ".join(missing))
    with private_engine.private_engine() as uri:
        image_kit.ensure_images(uri, names=missing, extra=extras(*extra))


def load_images(engines: dict[str, str]) -> None:
    """The images each lab host's engine needs for the CMS stack and hapair's services."""
    for host, uri in engines.items():
        names = cp.WITNESS_IMAGES if host == "witness" else (*cp.NODE_IMAGES, CMS_IMAGE)
        image_kit.ensure_images(uri, names=names, extra=extras(cp.PATRONI))


# --- the stack on node1 ----------------------------------------------------------------------

SECRETS = ("postgres_password", "redis_password", "s3_access_key", "s3_secret_key",
           "django_secret_key")  # cs.cms_env_file's order
READY_TIMEOUT = 180.0


def start_single_server(lab: Lab) -> None:
    """The `cms` stack up on node1 with docker-compose (as its admin would), the database
    migrated by an explicit one-off run (never at start), /health/ 200 on node1's port 80."""
    t = LabHostTransport("node1", lab.cfg.lab_dir)
    t.run(["mkdir", "-p", cs.APP_DIR])
    t.write_file(cs.COMPOSE_FILE, cs.compose_file(CMS_IMAGE, app="cms"), mode=0o644)
    t.write_file(f"{cs.APP_DIR}/.env.node1",
                 cs.cms_env_file(*(cp.secret(lab, name) for name in SECRETS)), mode=0o600)
    t.run(cs.compose_argv("up", "-d", "postgres", "redis", "storage"), timeout=300)
    ready = cs.compose_argv("exec", "-T", "postgres", "pg_isready", "-U", "cms", "-d", "cms")
    cp.wait("PostgreSQL answers on node1",
            lambda: t.run(ready, check=False, timeout=30).returncode == 0, READY_TIMEOUT)
    t.run(cs.compose_argv("run", "--rm", "--no-deps", "-T", "backend", "python", "manage.py",
                          "migrate", "--noinput"), timeout=300)
    t.run(cs.compose_argv("up", "-d", "backend"), timeout=300)
    cp.wait("the CMS answers /health/ 200 on node1",
            lambda: health(lab.address("node1")).status_code == 200, READY_TIMEOUT)


def base_url(address: str) -> str:
    return f"http://{address}:{cs.APP_PORT}/"


def health(address: str) -> httpx.Response:
    return httpx.get(f"{base_url(address)}health/", timeout=5, trust_env=False)


# --- acknowledged articles, checked in the database itself -----------------------------------


def article_rows(engines: dict[str, str], host: str, acks: Sequence[ArticleAck]
                 ) -> dict[str, tuple[str, str]]:
    """id → (title, sha256 of the body) of the acknowledged articles found on `host`'s
    PostgreSQL (psql in its Patroni container)."""
    if not acks:
        return {}
    ids = ",".join(str(int(a.id)) for a in acks)
    rows = cp.psql(engines, host, "SELECT id, title, encode(sha256(convert_to(body, 'UTF8')), "
                                  f"'hex') FROM articles_article WHERE id IN ({ids})")
    return {r[0]: (r[1], r[2]) for r in rows}


def article_problems(acks: Sequence[ArticleAck], rows: dict[str, tuple[str, str]]
                     ) -> dict[str, str]:
    """id → what is wrong, for each acknowledged article missing or different (pure)."""
    problems = {}
    for ack in acks:
        found = rows.get(ack.id)
        if found is None:
            problems[ack.id] = "missing"
        elif found[0] != ack.title:
            problems[ack.id] = f"title {found[0]!r} differs"
        elif found[1] != ack.body_sha256:
            problems[ack.id] = "body differs"
    return problems
