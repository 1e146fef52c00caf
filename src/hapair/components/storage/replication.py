"""Replication for S3 servers other than MinIO: a supervised `rclone copy` PULL, both ways.

The engine is rclone; what hapair adds is a schedule and one rule. A supervisord program,
`hapair-s3-replicate`, runs on EACH data node and pulls from its peer's site into its own:

- every `interval_s`, a *window* pass: `rclone copy --max-age N --use-server-modtime
  --no-traverse` per bucket, N = time since the start of the last successful pass +
  `overlap_s` (the overlap absorbs clock skew between the nodes and uploads that were still
  in flight). A failed pass widens the next window instead of losing objects;
- pulling from the WRITER (the peer's Patroni answers GET /primary with 200, asked before
  every pass): first after each (re)start and every `full_every_s`, a *full* pass of whole
  buckets with `--checksum` (size + MD5 from the listing): it catches what no window can see
  and rewrites a copy whose content differs, so a corrupted copy heals from the writer;
- pulling from a NON-writer (the peer is a standby, down, or not answering): add only
  (`--ignore-existing`), windows only, from the last good pass (kept across restarts in the
  state file). This is how uploads a node acknowledged while it was the writer — and that the
  other node had not pulled yet when it failed — reach the new writer once it is back.

The rule: only the writer's version overwrites. Whichever site took a write, the other gets
it; when the same key differs on both sites, the writer's copy wins (the other one is
rewritten at the next full pass), and a corrupted copy on the non-writer never spreads to
the writer. Always `copy`, never `sync`: a sync mirrors deletions, so a site that comes up
empty for a moment (a missing mount, a recreated bucket) would delete every object on the
other — replication turning one site's fault into the loss of both. Consequence: deletes
are not propagated (docs/storage.md).

Why pull, on the receiver: the receiver knows what it lacks; when a node dies nothing has to
change on the other; when it comes back its own loop catches up. Each rclone run is bounded
(`timeout --foreground`, so supervisord's group stop reaches rclone too).

Secrets: the S3 keys sit in an rclone config file, mode 0600, owned by the program's user.
(`rclone obscure` does not apply: rclone reads `secret_access_key` as plain text; obscuring
only exists for password-type options.) Nothing secret is in argv or the environment.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from typing import Literal

from hapair.components.common import (
    RenderedFile,
    render_template,
    require_abs_path,
    require_positive,
    require_token,
    unique,
)
from hapair.components.storage.site import REGION, Backend, S3Credentials, Site, require_bucket
from hapair.errors import UsageError
from hapair.exec.runtime import ServiceSpec

PROGRAM = "hapair-s3-replicate"
CONF_NAME = "rclone.conf"
SCRIPT_NAME = "replicate.sh"
STATE_NAME = "replication.json"
PROVIDERS: dict[Backend, str] = {"s3": "Other", "minio": "Minio"}

CopyMode = Literal["full", "window", "seed", "reconcile"]


@dataclass(frozen=True)
class ReplicationSettings:
    interval_s: int = 5  # between passes: new objects reach the receiver within ~this + a pass
    full_every_s: int = 600
    overlap_s: int = 60
    window_timeout_s: int = 600  # hard bound of one window pass per bucket
    full_timeout_s: int = 21600  # hard bound of one full pass per bucket (large catch-ups)
    transfers: int = 4
    checkers: int = 8
    rclone: str = "/usr/bin/rclone"  # Debian's rclone is enough for copying (not for serving)
    config_dir: str = "/etc/hapair/storage"
    state_dir: str = "/var/lib/hapair/storage"
    user: str = "root"

    def __post_init__(self) -> None:
        for value, what in (
            (self.interval_s, "interval_s"), (self.full_every_s, "full_every_s"),
            (self.overlap_s, "overlap_s"), (self.window_timeout_s, "window_timeout_s"),
            (self.full_timeout_s, "full_timeout_s"), (self.transfers, "transfers"),
            (self.checkers, "checkers"),
        ):
            require_positive(value, f"replication {what}")
        for path, what in ((self.rclone, "rclone"), (self.config_dir, "config_dir"),
                           (self.state_dir, "state_dir")):
            require_abs_path(path, f"replication {what}")
        require_token(self.user, "replication user")

    @property
    def conf_path(self) -> str:
        return posixpath.join(self.config_dir, CONF_NAME)

    @property
    def script_path(self) -> str:
        return posixpath.join(self.config_dir, SCRIPT_NAME)

    @property
    def state_path(self) -> str:
        return posixpath.join(self.state_dir, STATE_NAME)


@dataclass(frozen=True)
class Pull:
    """Replication into `target` (this node's site) from `source` (the peer's site).

    `source_primary_url`: the peer's Patroni `GET /primary`, asked before every pass (200:
    the source is the writer and its copies overwrite). None: the source is always the writer
    (a one-way pull, as seeding is)."""

    source: Site
    target: Site
    buckets: tuple[str, ...]
    settings: ReplicationSettings = ReplicationSettings()
    source_primary_url: str | None = None

    def __post_init__(self) -> None:
        if self.source.name == self.target.name:
            raise UsageError(f"replication: source and target are both {self.source.name}")
        if not self.buckets:
            raise UsageError("replication: no bucket to replicate")
        for bucket in self.buckets:
            require_bucket(bucket, "replication bucket")
        unique(list(self.buckets), "replication buckets")
        url = self.source_primary_url
        if url is not None and (not url.startswith("http://") or any(
                c in url for c in " '\"\\$`;")):
            raise UsageError(f"replication: source_primary_url {url!r} is not a plain http URL")


# -- rclone config (secret) --------------------------------------------------------------------


def render_rclone_conf(
    sites: tuple[Site, ...], credentials: S3Credentials, backend: Backend
) -> str:
    """One `[NODE]` s3 remote per site, path-style, with the shared keys."""
    access, secret = credentials.pair()
    unique([s.name for s in sites], "rclone remotes")
    lines = ["# hapair object replication remotes; written by hapair. Holds S3 keys: 0600."]
    for site in sorted(sites, key=lambda s: s.name):  # same file whichever way it pulls
        lines += [
            f"[{site.name}]",
            "type = s3",
            f"provider = {PROVIDERS[backend]}",
            "env_auth = false",
            f"access_key_id = {access}",
            f"secret_access_key = {secret}",
            f"endpoint = {site.url}",
            f"region = {REGION}",
            "force_path_style = true",
            "",
        ]
    return "\n".join(lines)


def rclone_conf_file(
    sites: tuple[Site, ...], credentials: S3Credentials, backend: Backend,
    settings: ReplicationSettings,
) -> RenderedFile:
    return RenderedFile(
        path=settings.conf_path,
        content=render_rclone_conf(sites, credentials, backend),
        mode=0o600,
        owner=settings.user,
        secret=True,
    )


# -- rclone commands (pure) -------------------------------------------------------------------


def copy_flags(settings: ReplicationSettings, mode: CopyMode) -> list[str]:
    """Flags of one `rclone copy` between two sites."""
    flags = [
        "--checksum",  # size + MD5 (the listing's ETag): no HEAD per object, heals corruption
        "--use-server-modtime",  # LastModified from the listing, for --max-age without HEADs
        "--metadata",  # content type, cache-control and user metadata travel with the object
        "--transfers", str(settings.transfers),
        "--checkers", str(settings.checkers),
        "--retries", "1",  # the loop is the retry
        "--low-level-retries", "3",
        "--contimeout", "5s",
        "--timeout", "60s",
    ]
    if mode == "window":
        flags.append("--no-traverse")  # few new objects: HEAD them instead of listing the target
    if mode == "reconcile":
        flags.append("--ignore-existing")  # only add what is missing; never overwrite the writer
    return flags


def copy_argv(
    pull: Pull, bucket: str, mode: CopyMode, *, log_file: str | None = None
) -> list[str]:
    """A one-shot copy of one bucket (seed and reconcile; the loop builds the same command).

    With `log_file` the run logs JSON there with stats every 5 s: an operator can follow a
    long seed, and the last stats line is the result (probe.parse_rclone_stats)."""
    if bucket not in pull.buckets:
        raise UsageError(f"replication: {bucket!r} is not one of the replicated buckets")
    argv = [
        # AWS_CA_BUNDLE breaks Debian's rclone 1.60 (see replicate.sh.j2): never pass it on.
        "env", "-u", "AWS_CA_BUNDLE",
        pull.settings.rclone, "--config", pull.settings.conf_path, "copy",
        f"{pull.source.name}:{bucket}", f"{pull.target.name}:{bucket}",
        *copy_flags(pull.settings, mode),
    ]
    if log_file:
        argv += ["--use-json-log", "--log-file", log_file, "--log-level", "INFO",
                 "--stats", "5s", "--stats-log-level", "NOTICE"]
    return argv


# -- the supervised loop ----------------------------------------------------------------------


def render_script(pull: Pull) -> str:
    s = pull.settings
    q = shlex.quote
    return render_template(
        "storage/replicate.sh.j2",
        source=pull.source.name,
        target=pull.target.name,
        rclone=q(s.rclone),
        conf=q(s.conf_path),
        state=q(s.state_path),
        buckets=" ".join(pull.buckets),  # validated S3 names: nothing to quote
        interval=s.interval_s,
        full_every=s.full_every_s,
        overlap=s.overlap_s,
        window_timeout=s.window_timeout_s,
        full_timeout=s.full_timeout_s,
        flags=" ".join(q(f) for f in copy_flags(s, "full")),
        window_flags=" ".join(q(f) for f in _window_only(s)),
        primary_url=q(pull.source_primary_url or ""),
    )


def _window_only(settings: ReplicationSettings) -> list[str]:
    full = copy_flags(settings, "full")
    return [f for f in copy_flags(settings, "window") if f not in full]


def script_file(pull: Pull) -> RenderedFile:
    # No secret inside (the keys are in the 0600 config): readable, not writable by others.
    return RenderedFile(pull.settings.script_path, render_script(pull), mode=0o755)


def replication_spec(pull: Pull) -> ServiceSpec:
    return ServiceSpec(
        name=PROGRAM,
        command=("/bin/sh", pull.settings.script_path),
        user=pull.settings.user,
        directory=pull.settings.state_dir,
        autostart=True,
        autorestart=True,
        stop_wait_secs=15,  # an interrupted copy loses nothing: the next pass redoes it
        priority=900,  # after the site itself
    )


def state_dir_argv(settings: ReplicationSettings) -> list[str]:
    return ["install", "-d", "-m", "0750", "-o", settings.user, settings.state_dir]


def config_dir_argv(settings: ReplicationSettings) -> list[str]:
    return ["install", "-d", "-m", "0755", settings.config_dir]
