"""Shared building blocks of the component layer. Everything here is pure (no I/O).

- `Check`: the answer of every health predicate: ok + a one-line human reason (Patroni-style).
- `Endpoint`, `Credential`, `SecretValue`: typed parameters.
- `RenderedFile`: a config file as data (path, content, mode); the exec layer writes it.
- `render_template()`: Jinja2 with StrictUndefined, so a missing value fails loudly instead of
  leaving a placeholder in a config (ORIGINAL_DEFECTS.md #6).
- `require_*()`: parameter validation raising UsageError with the field name, because a value
  with a newline or a quote would inject lines into a config file.
"""

from __future__ import annotations

import io
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Protocol

import jinja2
from ruamel.yaml import YAML

from hapair.check import Check
from hapair.errors import StepFailed, UsageError

REDACTED = "***"

# Safe in every line-based config we write: no whitespace, quotes or comment/block characters.
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@%+=,/-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class SecretValue(Protocol):
    """Anything that reveals a secret on demand (hapair.inventory.secrets.Secret fits)."""

    def reveal(self) -> str: ...


class Plain:
    """A SecretValue for values that do not come from the inventory (generated, tests)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plain) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def all_of(checks: list[Check], summary: str) -> Check:
    """Pass when every check passes; otherwise fail with the first failing reason."""
    for check in checks:
        if not check.ok:
            return check
    return Check.passed(summary)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __post_init__(self) -> None:
        require_host(self.host, "endpoint host")
        require_port(self.port, "endpoint port")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Credential:
    username: str
    password: SecretValue = field(repr=False)

    def __post_init__(self) -> None:
        require_name(self.username, "username")


@dataclass(frozen=True)
class RenderedFile:
    """A file to install. `secret=True` means it holds a secret: mode must be 0600 or
    stricter, and its content is never shown (repr hides it)."""

    path: str
    content: str = field(repr=False)
    mode: int = 0o644
    owner: str | None = None
    secret: bool = False

    def __post_init__(self) -> None:
        require_abs_path(self.path, "file path")
        if self.secret and self.mode & 0o077:
            raise UsageError(f"{self.path}: holds a secret, mode {self.mode:04o} must be 0600")


def curl_get_argv(url: str, timeout_s: int = 3, host_header: str | None = None) -> list[str]:
    """GET a URL from a host, printing the body then the status on its own last line. No -f:
    an error status (Patroni's 503 on /primary) is an answer too. Split with split_curl_status."""
    header = ["-H", f"Host: {require_token(host_header, 'host header')}"] if host_header else []
    return ["curl", "-sS", "--max-time", str(timeout_s), *header, "-o", "-", "-w",
            "\n%{http_code}", url]


def split_curl_status(stdout: str) -> tuple[int, str]:
    """Output of curl_get_argv -> (HTTP status, body); status 0 when nothing answered."""
    body, _, code = stdout.rstrip("\n").rpartition("\n")
    if not code.isdigit():
        raise StepFailed(f"curl output has no status code: {stdout[-80:]!r}")
    return int(code), body


def require_token(value: str, what: str) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise UsageError(f"{what}: {value!r} must be non-empty, without spaces or quotes")
    return value


def require_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise UsageError(f"{what}: {value!r} must be 1-63 letters, digits, '_', '.', '-'")
    return value


def require_ip(value: str, what: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not an IP address") from None
    return value


def require_host(value: str, what: str) -> str:
    """An IP address or a DNS name (no ports, no spaces)."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$",
                    str(value)):
        raise UsageError(f"{what}: {value!r} is not an address or host name")
    return value


def require_port(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise UsageError(f"{what}: {value!r} is not a TCP port (1-65535)")
    return value


def require_abs_path(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or not _TOKEN.match(value):
        raise UsageError(f"{what}: {value!r} must be an absolute path without spaces or quotes")
    return value


def require_positive(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{what}: {value!r} must be a positive integer")
    return value


def require_secret_text(secret: SecretValue, what: str) -> str:
    """The revealed value, refused when empty or multi-line (it would break a config line)."""
    value = secret.reveal()
    if not value or any(c in value for c in "\r\n\x00"):
        raise UsageError(f"{what}: must be a non-empty single line")
    return value


def unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise UsageError(f"{what}: {value!r} appears twice")
        seen.add(value)


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("hapair", "components"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # these are config files, not HTML  # noqa: S701
)


def render_template(template: str, /, **context: object) -> str:
    """Render `components/<name>` (e.g. "router/haproxy.cfg.j2")."""
    return _ENV.get_template(template).render(**context)


def dump_yaml(data: object, header: str = "") -> str:
    """YAML for PyYAML (Patroni) and Go yaml.v2 (etcd) readers: both follow YAML 1.1, where
    an unquoted `yes`, `on` or `010` is not a string. Dumping as 1.1 quotes those, so a
    password or name is never re-read as a bool or a number. Keys keep their order."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    yaml.default_flow_style = False
    yaml.width = 4096  # long values (initial-cluster) stay on one line
    yaml.representer.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    out = io.StringIO()
    yaml.dump(data, out)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + out.getvalue()
