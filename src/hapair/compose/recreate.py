"""Which change to a service definition recreates its container (pure).

`docker compose up` (v2) compares a hash of the service's whole configuration with the one
stored on the container; any difference RECREATES the container — a stop and a start, with a
new container. docker/compose pkg/compose/hash.go leaves out only `build`, `pull_policy`,
`scale`, `deploy.replicas`, `depends_on` and `profiles`, and `x-*` extension fields are not
part of the hashed config. So ports, command, networks, volumes, image, environment (env file
contents included: they are resolved into it), restart policy, stop_grace_period,
healthcheck, labels… all recreate; only those few do not. (docker-compose v1 hashed a similar
set; hapair plans with v2's rule, the stricter for depends_on.)

Values are compared in normal form: `"5432:5432"` and its long syntax are the same port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hapair.compose import normalize as n
from hapair.compose.model import parse_duration

Effect = Literal["recreate", "no restart"]

NOT_HASHED: dict[str, str] = {
    "profiles": "only decides whether `up` starts it; not part of the config hash",
    "depends_on": "start order only; not part of the config hash",
    "build": "not hashed: it matters once the rebuilt image is used (then the image changes)",
    "pull_policy": "when to pull, not how to run; not part of the config hash",
    "scale": "adds or removes containers; existing ones are kept",
}

REASONS: dict[str, str] = {
    "image": "a container runs one image: a new image is a new container",
    "command": "the process line is fixed when the container is created",
    "entrypoint": "the process line is fixed when the container is created",
    "environment": "the environment is fixed when the container is created",
    "env_file": "env file contents become the container's environment at creation",
    "ports": "port bindings are set when the container is created",
    "expose": "exposed ports are set when the container is created",
    "volumes": "mounts are set when the container is created",
    "tmpfs": "mounts are set when the container is created",
    "networks": "network attachments and fixed addresses are set at creation",
    "network_mode": "the network namespace is chosen at creation",
    "restart": "part of the config hash: compose recreates rather than updates the policy",
    "stop_grace_period": "part of the config hash: `up` recreates the container",
    "healthcheck": "part of the config hash: `up` recreates the container",
}
DEFAULT_REASON = "part of the service's config hash: `up` recreates the container"


@dataclass(frozen=True)
class Change:
    field: str
    effect: Effect
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.effect} ({self.reason})"


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The fields that differ between two definitions of one service, each with its effect
    on the running container and a one-line reason. Field order follows `new`, then `old`."""
    out = []
    for key in dict.fromkeys([*new, *old]):
        before, after = old.get(key), new.get(key)
        if key == "deploy":
            out += _deploy(before or {}, after or {})
        elif _normal(key, before) != _normal(key, after):
            out.append(effect_of(key))
    return out


def effect_of(key: str) -> Change:
    if key in NOT_HASHED:
        return Change(key, "no restart", NOT_HASHED[key])
    if key.startswith("x-"):
        return Change(key, "no restart", "extension fields are not read by compose")
    return Change(key, "recreate", REASONS.get(key, DEFAULT_REASON))


def recreates(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(c.effect == "recreate" for c in changes(old, new))


def _deploy(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    out = []
    if old.get("replicas") != new.get("replicas"):
        out.append(Change("deploy.replicas", "no restart", NOT_HASHED["scale"]))
    rest_old = {k: v for k, v in old.items() if k != "replicas"}
    rest_new = {k: v for k, v in new.items() if k != "replicas"}
    if rest_old != rest_new:
        out.append(Change("deploy", "recreate", DEFAULT_REASON))
    return out


_NORMALIZERS = {
    "ports": lambda v: sorted(n.parse_ports(v), key=repr),
    "volumes": lambda v: sorted(n.parse_mounts(v), key=repr),
    "environment": n.parse_environment,
    "command": n.parse_command,
    "entrypoint": n.parse_command,
    "networks": lambda v: sorted(n.parse_networks(v), key=repr),
    "env_file": n.parse_env_files,
    "depends_on": lambda v: sorted(n.parse_depends_on(v)),
    "profiles": lambda v: sorted(n.parse_str_list(v, "profiles")),
    "stop_grace_period": parse_duration,
    "expose": lambda v: sorted(n.parse_str_list(v, "expose")),
}


def _normal(key: str, value: Any) -> Any:
    if value is None:
        return None
    normalizer = _NORMALIZERS.get(key)
    try:
        return normalizer(value) if normalizer else _plain(value)
    except ValueError:
        return _plain(value)  # compared as written; compose would reject it anyway


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return n.as_str(value) if isinstance(value, bool | int | float) else value
