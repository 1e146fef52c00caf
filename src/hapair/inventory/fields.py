"""Validated field types of the inventory, and the load context they read files through.

Each type is an `Annotated` scalar whose validator raises ValueError with a one-line problem;
the loader turns pydantic's location of that error into a key path (`hosts[1].address`).
The only I/O (the SSH key file, secrets) goes through `LoadContext`, so models stay pure.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, PlainValidator, StrictInt, StrictStr, ValidationInfo
from pydantic.functional_serializers import PlainSerializer

from hapair.inventory.secrets import Secret, SecretRef, parse_ref, resolve_ref

Loc = tuple[str | int, ...]


class LocatedError(ValueError):
    """A problem found by a model validator about one of the model's own keys.

    pydantic places errors of a model validator at the model itself; `loc` (relative to
    that model) lets the loader point at the key that is actually wrong.
    """

    def __init__(self, loc: Loc, problem: str) -> None:
        super().__init__(problem)
        self.loc = loc
        self.problem = problem


def key_path(loc: Sequence[str | int]) -> str:
    """('hosts', 1, 'address') -> 'hosts[1].address' (the form every message uses)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class LoadContext:
    """Where relative paths start (the inventory's directory) and which environment to read."""

    base_dir: Path
    source: str = "inventory.yaml"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def resolve_secret(self, ref: SecretRef) -> Secret:
        return resolve_ref(ref, self.base_dir, self.env)

    def private_file(self, name: str, what: str) -> Path:
        """A local file that must exist and be private (0600-like), e.g. an SSH key.

        Relative to the inventory's directory; `~/` is the controller user's home."""
        path = self.base_dir / Path(name).expanduser()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ValueError(f"{what} {name} missing") from None
        except OSError as exc:
            raise ValueError(f"cannot read {what} {name}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{what} {name} is not a regular file")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise ValueError(
                f"{what} {name} is accessible by group/others (mode {mode:04o}); chmod 600 it"
            )
        return path


def _context(info: ValidationInfo, what: str) -> LoadContext:
    ctx = info.context
    if not isinstance(ctx, LoadContext):
        raise ValueError(f"{what} can only be resolved while loading an inventory file")
    return ctx


# --- scalars -------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _dns_name(max_len: int) -> AfterValidator:
    def check(value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > max_len:
            raise ValueError(
                f"{value!r} is not a DNS-safe name (lowercase letters, digits and '-', "
                f"not starting or ending with '-', at most {max_len} characters)"
            )
        return value

    return AfterValidator(check)


def _version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported version {value} (this hapair reads version 1)")
    return value


def _pg_major(value: int) -> int:
    if not 10 <= value <= 99:
        raise ValueError(f"PostgreSQL major version {value} is not supported (10 or later)")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range (1-65535)")
    return value


def _ip_address(value: str) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid IP address") from None
    if ip.is_unspecified or ip.is_multicast:
        raise ValueError(f"{value!r} is not a host address")
    return str(ip)  # normalised, so that duplicates are found whatever the spelling


def _abs_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "\0\n\r"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a URL path (must start with '/', no spaces)")
    return value


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    # Lowercase SQL identifiers need no quoting anywhere they are used.
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a plain identifier (lowercase letters, digits, '_'; "
            "not starting with a digit)"
        )
    return value


_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _unix_user(value: str) -> str:
    if not _USER.match(value):
        raise ValueError(f"{value!r} is not a valid user name")
    return value


_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def _interface(value: str) -> str:
    if not _IFNAME.match(value):
        raise ValueError(f"{value!r} is not a network interface name")
    return value


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket(value: str) -> str:
    if not _BUCKET.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a valid S3 bucket name")
    return value


def _compose_name(pattern: str, what: str) -> Callable[[str], str]:
    """A validator for compose project and service names (compose's own rules)."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not a compose {what}")
        return value

    return check


_compose_project = _compose_name(r"[a-z0-9][a-z0-9_-]*",
                                 "project name (lowercase letters, digits, '_', '-')")
_compose_service = _compose_name(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*",
                                 "service name (letters, digits, '_', '.', '-')")


# --- SSH host keys ---------------------------------------------------------------------------

HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _host_key(value: str) -> str:
    """'TYPE BASE64 [comment]' as in a .pub file or known_hosts; normalised to 'TYPE BASE64'."""
    parts = value.split()
    if len(parts) < 2:
        raise ValueError("a host key is 'TYPE BASE64' (e.g. 'ssh-ed25519 AAAAC3Nz...')")
    key_type, data = parts[0], parts[1]
    if key_type not in HOST_KEY_TYPES:
        raise ValueError(f"unknown host key type {key_type!r} (known: {', '.join(HOST_KEY_TYPES)})")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{key_type} host key is not valid base64") from None
    # The blob starts with its own type name (RFC 4253 §6.6): catches keys pasted
    # with the wrong type, or truncated.
    name = key_type.encode()
    if blob[:4] != len(name).to_bytes(4, "big") or blob[4 : 4 + len(name)] != name:
        raise ValueError(f"host key data is not an {key_type} key")
    return f"{key_type} {data}"


# --- files and secrets (read through the load context) ---------------------------------------


def _private_key_file(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):  # already resolved (a model built in code)
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("expected a file path (relative to the inventory file)")
    return _context(info, "an ssh key").private_file(value, "ssh key file")


def _secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):  # already resolved (a model built in code)
        return value
    ref = parse_ref(value)
    return _context(info, "a secret reference").resolve_secret(ref)


Version = Annotated[StrictInt, AfterValidator(_version)]
PgMajor = Annotated[StrictInt, AfterValidator(_pg_major)]
Port = Annotated[StrictInt, AfterValidator(_port)]
HostName = Annotated[StrictStr, _dns_name(63)]
ClusterName = Annotated[StrictStr, _dns_name(32)]
IpAddress = Annotated[StrictStr, AfterValidator(_ip_address)]
AbsPath = Annotated[StrictStr, AfterValidator(_abs_path)]
UrlPath = Annotated[StrictStr, AfterValidator(_url_path)]
Identifier = Annotated[StrictStr, AfterValidator(_identifier)]
UnixUser = Annotated[StrictStr, AfterValidator(_unix_user)]
Interface = Annotated[StrictStr, AfterValidator(_interface)]
Bucket = Annotated[StrictStr, AfterValidator(_bucket)]
ComposeProject = Annotated[StrictStr, AfterValidator(_compose_project)]
ComposeService = Annotated[StrictStr, AfterValidator(_compose_service)]
HostKey = Annotated[StrictStr, AfterValidator(_host_key)]
PrivateKeyFile = Annotated[
    Path, PlainValidator(_private_key_file), PlainSerializer(str, return_type=str)
]
SecretValue = Annotated[Secret, PlainValidator(_secret)]


def no_duplicates(items: Sequence[Any], what: str) -> None:
    """Raise a LocatedError at the second occurrence of any item."""
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        if item in seen:
            raise LocatedError((i,), f"{what} {item!r} is listed twice")
        seen[item] = i
