"""Where one of hapair's program names lives on a compose host: which project, which service.

Workflows name services the way the supervisor runtime does (`patroni`, `etcd`, `backend`…).
On a compose host those names point into one of two projects (docs/compose.md):
- hapair's own project, `<project>-hapair`, from the generated file: etcd, Patroni, the
  router, the pair's Redis, Sentinel, keepalived;
- the user's project: the app's services, found through the inventory's `compose.services`
  role mapping (`backend: authoring`).
A name that has no place on compose (PgBouncer, the S3 helpers of the native layout) is
refused with the list of names that do, rather than guessed. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hapair.compose.draft import hapair_project
from hapair.errors import Refused
from hapair.inventory.model import ComposeServices

Project = Literal["hapair", "app"]

# program → service of hapair's generated project (compose/generate.py names them).
HAPAIR_SERVICES: dict[str, str] = {
    "etcd": "hapair-etcd",
    "patroni": "hapair-patroni",
    "router": "hapair-router",
    "redis": "hapair-redis",  # the pair's Redis; the user's own stays for rollback
    "sentinel": "hapair-sentinel",
    "keepalived": "hapair-keepalived",
}
# program → role in the user's project (inventory `compose.services`).
APP_ROLES: dict[str, str] = {
    "postgres": "postgres",  # the user's single-node PostgreSQL (before the upgrade)
    "s3": "storage",
    "backend": "backend",
    "frontend": "frontend",
    "scheduler": "scheduler",
    "nginx": "http_lb",
}
# Patroni's grace: the generated file's stop_grace_period (a stop must never cut it short).
STOP_GRACE_S: dict[str, int] = {"hapair-patroni": 120}


@dataclass(frozen=True)
class Placement:
    project: Project
    service: str


def is_hapair_project(project: str) -> bool:
    """The witness's inventory names hapair's project itself: it runs no app of its own."""
    return project.endswith("-hapair")


def hapair_project_of(project: str) -> str:
    return project if is_hapair_project(project) else hapair_project(project)


def place(host: str, program: str, services: ComposeServices, *, has_app: bool) -> Placement:
    """Where `program` runs on this compose host; Refused when it has no place here."""
    if program in HAPAIR_SERVICES:
        return Placement("hapair", HAPAIR_SERVICES[program])
    if program.startswith("hapair-") and program.removeprefix("hapair-") in HAPAIR_SERVICES:
        return Placement("hapair", program)
    if program in APP_ROLES:
        role = APP_ROLES[program]
        service = getattr(services, role) if has_app else None
        if service:
            return Placement("app", service)
        why = ("this host runs hapair's project only" if not has_app else
               f"no `compose.services.{role}` in the inventory for {host}")
        raise Refused(f"{host}: no compose service for {program!r} ({why})")
    if has_app and program == "worker" and services.worker:
        return Placement("app", services.worker[0])
    known = sorted([*HAPAIR_SERVICES, *(APP_ROLES if has_app else ())])
    raise Refused(f"{host}: {program!r} has no place on a compose host (compose hosts run: "
                  f"{', '.join(known)})")


def program_of(placement: Placement, services: ComposeServices) -> str:
    """The program name for a service found in a project (inverse of place; else the
    service's own name)."""
    if placement.project == "hapair":
        return next((p for p, s in HAPAIR_SERVICES.items() if s == placement.service),
                    placement.service)
    roles = {getattr(services, role): program for program, role in APP_ROLES.items()}
    return roles.get(placement.service) or placement.service
