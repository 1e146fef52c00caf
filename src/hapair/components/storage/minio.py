"""MinIO backend: MinIO's own site replication, configured with `mc` where the server runs.

`mc admin replicate add node1 node2` joins the two single-node deployments into one
site-replication group: buckets, IAM and objects are replicated in BOTH directions by MinIO
itself (active-active), existing objects of the first site included. So for MinIO there is
no direction to reverse after a failover — hapair still routes writes to one site (router.py)
and verifies replication by reading a canary back, never by trusting `mc` status output.

MinIO's rule: only the FIRST alias may hold buckets or objects when the group is created
(node1, with the existing media; node2 must be empty). Site names are the mc aliases, which
hapair names after the nodes.

mc's credentials come from a 0600 config.json in a private `--config-dir`, never from argv
(`mc alias set A URL KEY SECRET`) or from MC_HOST_* variables (a URL with the secret in it).

Not run here: no MinIO server is obtainable on the build machine, so the argument lists and
parsers are tested against the JSON shapes of mc's source (madmin SiteReplicationInfo,
ReplicateAddStatus); the lab uses the `s3` backend.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

from hapair.components.common import Check, RenderedFile, require_abs_path, unique
from hapair.components.storage.site import S3Credentials, Site
from hapair.errors import StepFailed, UsageError

MC_CONFIG_VERSION = "10"


@dataclass(frozen=True)
class Mc:
    binary: str = "/usr/local/bin/mc"
    config_dir: str = "/etc/hapair/storage/mc"

    def __post_init__(self) -> None:
        require_abs_path(self.binary, "mc binary")
        require_abs_path(self.config_dir, "mc config_dir")

    @property
    def config_path(self) -> str:
        return posixpath.join(self.config_dir, "config.json")

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--config-dir", self.config_dir, "--json", "--no-color", *args]


def render_mc_config(sites: tuple[Site, ...], credentials: S3Credentials) -> str:
    access, secret = credentials.pair()
    unique([s.name for s in sites], "mc aliases")
    aliases = {
        s.name: {"url": s.url, "accessKey": access, "secretKey": secret, "api": "s3v4",
                 "path": "auto"}
        for s in sites
    }
    return json.dumps({"version": MC_CONFIG_VERSION, "aliases": aliases}, indent=2) + "\n"


def mc_config_file(mc: Mc, sites: tuple[Site, ...], credentials: S3Credentials) -> RenderedFile:
    return RenderedFile(mc.config_path, render_mc_config(sites, credentials), mode=0o600,
                        secret=True)


def replicate_add_argv(mc: Mc, first: Site, second: Site) -> list[str]:
    """`first` holds the existing data; `second` must be empty."""
    if first.name == second.name:
        raise UsageError(f"mc admin replicate add: both sites are {first.name}")
    return mc.argv("admin", "replicate", "add", first.name, second.name)


def replicate_info_argv(mc: Mc, site: Site) -> list[str]:
    return mc.argv("admin", "replicate", "info", site.name)


def resync_start_argv(mc: Mc, source: Site, target: Site) -> list[str]:
    """Re-send every object from `source` to `target` (a site that lost data)."""
    return mc.argv("admin", "replicate", "resync", "start", source.name, target.name)


# -- parsers (pure) ---------------------------------------------------------------------------


def _document(output: str, what: str) -> dict[str, object]:
    """mc --json prints one JSON document (or one per line); the last one is the answer."""
    docs = []
    for line in output.strip().splitlines() or [""]:
        line = line.strip()
        if line:
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError:
                docs = []
                break
    if not docs:
        try:
            docs = [json.loads(output)]
        except json.JSONDecodeError:
            raise StepFailed(f"{what}: mc did not answer JSON: {output.strip()[:120]!r}") from None
    doc = docs[-1]
    if not isinstance(doc, dict):
        raise StepFailed(f"{what}: unexpected mc answer {doc!r:.120}")
    if doc.get("status") == "error":
        err = doc.get("error")
        message = err.get("message") if isinstance(err, dict) else err
        cause = err.get("cause", {}).get("message") if isinstance(err, dict) and isinstance(
            err.get("cause"), dict) else None
        raise StepFailed(f"{what}: {message}" + (f" ({cause})" if cause else ""))
    return doc


def parse_replicate_add(output: str) -> Check:
    doc = _document(output, "mc admin replicate add")
    status = str(doc.get("status", "")).strip()
    if not doc.get("success"):
        detail = doc.get("errorDetail") or status or "no detail"
        return Check.failed(f"site replication not configured: {detail}")
    if doc.get("initialSyncErrorMessage"):
        return Check.failed(f"site replication added, initial sync failed: "
                            f"{doc['initialSyncErrorMessage']}")
    return Check.passed(status or "site replication configured")


@dataclass(frozen=True)
class SiteReplicationInfo:
    enabled: bool
    group: str
    sites: tuple[tuple[str, str, str], ...]  # (name, endpoint, deploymentID)


def parse_replicate_info(output: str) -> SiteReplicationInfo:
    doc = _document(output, "mc admin replicate info")
    sites = doc.get("sites") or []
    if not isinstance(sites, list):
        raise StepFailed("mc admin replicate info: 'sites' is not a list")
    return SiteReplicationInfo(
        enabled=bool(doc.get("enabled")),
        group=str(doc.get("name", "")),
        sites=tuple(
            (str(s.get("name", "")), str(s.get("endpoint", "")), str(s.get("deploymentID", "")))
            for s in sites if isinstance(s, dict)
        ),
    )


def replication_configured(info: SiteReplicationInfo, expected: tuple[Site, ...]) -> Check:
    """Enabled, and every expected site is in the group under its name and endpoint."""
    if not info.enabled:
        return Check.failed("MinIO site replication is not enabled")
    by_name = {name: endpoint for name, endpoint, _ in info.sites}
    for site in expected:
        if site.name not in by_name:
            return Check.failed(f"site {site.name} is not in the replication group "
                                f"(members: {', '.join(sorted(by_name)) or 'none'})")
        if by_name[site.name].rstrip("/") != site.url:
            return Check.failed(f"site {site.name} is in the group as {by_name[site.name]}, "
                                f"expected {site.url}")
    names = ", ".join(s.name for s in expected)
    return Check.passed(f"MinIO site replication enabled between {names}")
