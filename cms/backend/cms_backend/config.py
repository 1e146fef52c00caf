"""Configuration from environment variables (and an optional 0600 KEY=VALUE file).

Pure standard-library code so it can be unit-tested without Django. Names are those of the
original deployment. Errors name the variable (never its value: values may be secrets).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_FILE_VAR = "CMS_ENV_FILE"

REQUIRED = (
    "POSTGRES_HOST",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "REDIS_URL",
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
)

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(Exception):
    """Invalid or missing configuration; the message names the variable, not its value."""


@dataclass(frozen=True)
class CmsConfig:
    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    redis_url: str
    s3_endpoint_url: str
    s3_access_key: str
    s3_secret_key: str
    bucket_public: str
    bucket_private: str
    secret_key: str
    allowed_hosts: tuple[str, ...]
    debug: bool
    node_name: str
    log_level: str
    media_max_bytes: int

    def __repr__(self) -> str:  # never print secrets, even by accident
        return f"CmsConfig(postgres_host={self.postgres_host!r}, node_name={self.node_name!r}, …)"


def parse_env_file(text: str) -> dict[str, str]:
    """Parse KEY=VALUE lines: `#` comments, blank lines, optional `export `.

    An unquoted value is taken literally (no expansion, no inline comments) so passwords may
    hold `#`, `=`, `$` or spaces. A value starting with a quote is read as ONE shell word
    (no expansion), so `shlex.quote` output such as `'it'"'"'s'` works, as in `. FILE`.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            # The line may contain a secret: report its number only.
            raise ConfigError(f"line {number}: expected KEY=VALUE")
        values[key] = _value(value.strip(), number)
    return values


def _value(raw: str, number: int) -> str:
    if raw[:1] not in ("'", '"'):
        return raw
    try:
        words = shlex.split(raw)
    except ValueError:
        raise ConfigError(f"line {number}: unbalanced quotes") from None
    if len(words) != 1:
        raise ConfigError(f"line {number}: text after the closing quote")
    return words[0]


def read_env_file(path: str) -> dict[str, str]:
    """Read the env file, refusing one that other users could read or write."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{ENV_FILE_VAR}={path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{ENV_FILE_VAR}={path}: not a regular file")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(
            f"{ENV_FILE_VAR}={path}: mode {mode:04o} lets other users read it; chmod 600 it"
        )
    with open(path, encoding="utf-8") as handle:
        try:
            return parse_env_file(handle.read())
        except ConfigError as exc:
            raise ConfigError(f"{ENV_FILE_VAR}={path}: {exc}") from None


def merged_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment plus the env file's values for keys the environment does not set."""
    merged = dict(environ)
    path = environ.get(ENV_FILE_VAR, "").strip()
    if path:
        for key, value in read_env_file(path).items():
            merged.setdefault(key, value)
    return merged


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}: expected a boolean (true/false, 1/0, yes/no, on/off)")


def parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer") from None
    if not low <= number <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}")
    return number


def endpoint_url(value: str, use_ssl: bool) -> str:
    """MinIO-style endpoint (`host:port`, or a full URL) → the URL an S3 client needs.

    A URL's own scheme wins over MINIO_USE_SSL; a bare host gets https when MINIO_USE_SSL.
    """
    raw = value.strip()
    if "://" not in raw:
        raw = f"{'https' if use_ssl else 'http'}://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("MINIO_ENDPOINT: expected host:port or an http(s):// URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("MINIO_ENDPOINT: must not contain a path or query")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError("MINIO_ENDPOINT: invalid port") from None
    return f"{parts.scheme}://{parts.netloc}"


def check_redis_url(value: str) -> str:
    scheme = urlsplit(value.strip()).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL: expected redis://[:password@]host:port/db")
    return value.strip()


def split_hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in value.split(",") if h.strip())
    if not hosts:
        raise ConfigError("DJANGO_ALLOWED_HOSTS: needs at least one host name")
    return hosts


def parse_log_level(value: str) -> str:
    level = value.strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("CMS_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR")
    return level


def build_config(env: Mapping[str, str], default_node: str = "") -> CmsConfig:
    """Validate the merged environment; all missing required names are reported at once."""
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(
            "missing required configuration: "
            + ", ".join(missing)
            + f" (set in the environment or in the file named by {ENV_FILE_VAR})"
        )
    use_ssl = parse_bool("MINIO_USE_SSL", env.get("MINIO_USE_SSL", "false"))
    return CmsConfig(
        postgres_host=env["POSTGRES_HOST"].strip(),
        postgres_port=parse_int("POSTGRES_PORT", env.get("POSTGRES_PORT", "5432"), 1, 65535),
        postgres_db=env["POSTGRES_DB"].strip(),
        postgres_user=env["POSTGRES_USER"].strip(),
        postgres_password=env["POSTGRES_PASSWORD"],
        redis_url=check_redis_url(env["REDIS_URL"]),
        s3_endpoint_url=endpoint_url(env["MINIO_ENDPOINT"], use_ssl),
        s3_access_key=env["MINIO_ACCESS_KEY"].strip(),
        s3_secret_key=env["MINIO_SECRET_KEY"],
        bucket_public=env.get("MINIO_BUCKET_PUBLIC", "").strip() or "media-public",
        bucket_private=env.get("MINIO_BUCKET_PRIVATE", "").strip() or "media-private",
        secret_key=env["DJANGO_SECRET_KEY"],
        allowed_hosts=split_hosts(env["DJANGO_ALLOWED_HOSTS"]),
        debug=parse_bool("DJANGO_DEBUG", env.get("DJANGO_DEBUG", "false")),
        node_name=env.get("CMS_NODE_NAME", "").strip() or default_node,
        log_level=parse_log_level(env.get("CMS_LOG_LEVEL", "")),
        media_max_bytes=parse_int(
            "CMS_MEDIA_MAX_BYTES", env.get("CMS_MEDIA_MAX_BYTES", str(50 * 1024 * 1024)), 1, 2**40
        ),
    )
