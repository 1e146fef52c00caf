"""The HTTP route table: which path prefixes go to the Django backend, which to the frontend.

Longest prefix wins (that is what nginx does with prefix locations, and the HAProxy renderer
emits its rules longest first). Some `/api/…` paths belong to Next.js, not Django
(ORIGINAL_DEFECTS #10), so nothing is inferred from "/api/": every prefix is listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hapair.errors import UsageError

Target = Literal["backend", "frontend"]

_PREFIX = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,=:@%/-]*$")


@dataclass(frozen=True)
class Route:
    prefix: str
    target: Target


@dataclass(frozen=True)
class RouteTable:
    backend: tuple[str, ...]
    frontend: tuple[str, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for target, prefixes in (("backend", self.backend), ("frontend", self.frontend)):
            for prefix in prefixes:
                if not _PREFIX.match(prefix) or "'" in prefix:
                    raise UsageError(
                        f"routes.{target}: {prefix!r} must start with '/' and hold no spaces, "
                        "quotes, ';', '{' or '}'"
                    )
                if prefix in seen:
                    raise UsageError(
                        f"routes.{target}: {prefix!r} is already routed to {seen[prefix]}"
                    )
                seen[prefix] = target

    @property
    def default(self) -> Target:
        """Where paths matching no prefix go: the group listing "/", else the frontend."""
        return "backend" if "/" in self.backend else "frontend"

    def routes(self) -> tuple[Route, ...]:
        """Every prefix except "/", longest first (ties: alphabetical, for stable output)."""
        items = [Route(p, "backend") for p in self.backend if p != "/"]
        items += [Route(p, "frontend") for p in self.frontend if p != "/"]
        return tuple(sorted(items, key=lambda r: (-len(r.prefix), r.prefix)))

    def target_for(self, path: str) -> Target:
        for route in self.routes():
            if path.startswith(route.prefix):
                return route.target
        return self.default
