"""One object-storage site per data node: its address, the shared credentials, and (for the
`s3` backend) the `rclone serve s3` program that serves a plain directory on node2.

Both sites use the SAME access/secret key (the inventory has one pair): S3 signatures (SigV4)
are checked with the receiving server's keys, so the local router can pass a request signed
for one site to the other unchanged (router.py).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

from hapair.components.common import (
    RenderedFile,
    SecretValue,
    require_abs_path,
    require_host,
    require_ip,
    require_name,
    require_port,
    require_secret_text,
    require_token,
)
from hapair.errors import UsageError
from hapair.exec.runtime import ServiceSpec

Backend = Literal["s3", "minio"]
BACKENDS: tuple[Backend, ...] = ("s3", "minio")
SITE_PROGRAM = "s3"  # the name the single-node stack uses on node1; node2 mirrors it
REGION = "us-east-1"  # any S3-compatible server accepts it; SigV4 needs one


@dataclass(frozen=True)
class Site:
    """The S3 endpoint on one node. `name` is the node's inventory name: it is also the rclone
    remote, the mc alias and the MinIO site name, so every message names the node."""

    name: str
    address: str
    port: int = 9000
    scheme: Literal["http", "https"] = "http"

    def __post_init__(self) -> None:
        require_name(self.name, "storage site name")
        require_host(self.address, f"storage site {self.name} address")
        require_port(self.port, f"storage site {self.name} port")
        if self.scheme not in ("http", "https"):
            raise UsageError(f"storage site {self.name}: scheme {self.scheme!r} is not http(s)")

    @property
    def hostport(self) -> str:
        host = self.address
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.hostport}"


@dataclass(frozen=True)
class S3Credentials:
    """The key pair both sites accept. Values are revealed only where they go to a 0600 file."""

    access_key: SecretValue = field(repr=False)
    secret_key: SecretValue = field(repr=False)

    def pair(self) -> tuple[str, str]:
        access = require_secret_text(self.access_key, "storage access_key")
        secret = require_secret_text(self.secret_key, "storage secret_key")
        for value, what in ((access, "access_key"), (secret, "secret_key")):
            if value != value.strip():
                raise UsageError(f"storage {what}: leading or trailing blanks are not allowed")
        return access, secret


def rclone_auth_value(credentials: S3Credentials) -> str:
    """RCLONE_AUTH_KEY for `rclone serve s3`: one CSV field "ACCESS,SECRET" (a list flag read
    from the environment is CSV; unquoted, the comma splits it and rclone says "invalid auth
    pair"). rclone then splits the pair at the comma, so neither key may hold one."""
    access, secret = credentials.pair()
    if "," in access or "," in secret:
        raise UsageError("storage keys: rclone serve s3 cannot take a key containing ','")
    return '"' + f"{access},{secret}".replace('"', '""') + '"'


@dataclass(frozen=True)
class SiteServer:
    """`rclone serve s3` serving data_dir (bucket = directory, object = file)."""

    listen: tuple[str, ...]  # addresses; the node's own and 127.0.0.1
    port: int
    data_dir: str
    env_file: str = "/etc/hapair/s3.env"
    cache_dir: str = "/var/lib/hapair/s3-cache"
    rclone: str = "/opt/hapair/venv/bin/rclone"
    user: str = "hapair-s3"
    home: str = "/var/lib/hapair"

    def __post_init__(self) -> None:
        if not self.listen:
            raise UsageError("storage site server: at least one listen address")
        for address in self.listen:
            require_ip(address, "storage site listen address")
        require_port(self.port, "storage site port")
        for path, what in ((self.data_dir, "data_dir"), (self.env_file, "env_file"),
                           (self.cache_dir, "cache_dir"), (self.rclone, "rclone"),
                           (self.home, "home")):
            require_abs_path(path, f"storage site {what}")
        require_token(self.user, "storage site user")


def site_env_file(server: SiteServer, credentials: S3Credentials) -> RenderedFile:
    """The 0600 env file the site program sources: the keys never reach argv or supervisord."""
    value = shlex.quote(rclone_auth_value(credentials))
    return RenderedFile(
        path=server.env_file,
        content=f"RCLONE_AUTH_KEY={value}\n",
        mode=0o600,
        owner=f"{server.user}:{server.user}",
        secret=True,
    )


def site_spec(server: SiteServer, name: str = SITE_PROGRAM) -> ServiceSpec:
    addrs = " ".join(f"--addr {shlex.quote(_hostport(a, server.port))}" for a in server.listen)
    rclone = (
        f"exec {server.rclone} serve s3 {addrs} --config /dev/null "
        f"--cache-dir {server.cache_dir} {server.data_dir}"
    )
    return ServiceSpec(
        name=name,
        # A tiny wrapper sources the 0600 env file, so the key pair is never in argv.
        command=("sh", "-c", f"set -a; . {server.env_file}; {rclone}"),
        user=server.user,
        directory=server.data_dir,
        environment={"HOME": server.home},
        stop_wait_secs=30,
        priority=100,
    )


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else (
        f"{address}:{port}"
    )


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def require_bucket(value: str, what: str) -> str:
    """An S3 bucket name (3-63 lower-case letters, digits, '.', '-'): safe in every config."""
    if not isinstance(value, str) or not _BUCKET.match(value) or ".." in value:
        raise UsageError(f"{what}: {value!r} is not an S3 bucket name")
    return value
