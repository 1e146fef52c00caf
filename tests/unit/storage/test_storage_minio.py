import json
from pathlib import Path

import pytest

from hapair.components.common import Plain
from hapair.components.storage.minio import (
    Mc,
    SiteReplicationInfo,
    mc_config_file,
    parse_replicate_add,
    parse_replicate_info,
    replicate_add_argv,
    replicate_info_argv,
    replication_configured,
    resync_start_argv,
)
from hapair.components.storage.site import S3Credentials, Site
from hapair.errors import StepFailed, UsageError

DATA = Path(__file__).parent / "data"
N1 = Site("node1", "10.99.0.11")
N2 = Site("node2", "10.99.0.12")
MC = Mc()
BASE = ["/usr/local/bin/mc", "--config-dir", "/etc/hapair/storage/mc", "--json", "--no-color"]


def test_argv() -> None:
    assert replicate_add_argv(MC, N1, N2) == [*BASE, "admin", "replicate", "add", "node1",
                                              "node2"]
    assert replicate_info_argv(MC, N2) == [*BASE, "admin", "replicate", "info", "node2"]
    assert resync_start_argv(MC, N1, N2) == [*BASE, "admin", "replicate", "resync", "start",
                                             "node1", "node2"]
    with pytest.raises(UsageError):
        replicate_add_argv(MC, N1, N1)


def test_mc_config_holds_keys_privately() -> None:
    f = mc_config_file(MC, (N1, N2), S3Credentials(Plain("AKIA"), Plain('se"cret')))
    assert (f.path, f.mode, f.secret) == ("/etc/hapair/storage/mc/config.json", 0o600, True)
    assert json.loads(f.content) == {
        "version": "10",
        "aliases": {
            "node1": {"url": "http://10.99.0.11:9000", "accessKey": "AKIA",
                      "secretKey": 'se"cret', "api": "s3v4", "path": "auto"},
            "node2": {"url": "http://10.99.0.12:9000", "accessKey": "AKIA",
                      "secretKey": 'se"cret', "api": "s3v4", "path": "auto"},
        },
    }
    assert 'se"cret' not in repr(f)


@pytest.mark.parametrize(
    ("name", "ok", "reason"),
    [
        ("mc_add_success.json", True,
         "Requested sites were configured for replication successfully."),
        ("mc_add_partial.json", False,
         "site replication not configured: Unable to add sites for replication: only one "
         "cluster may have data when configuring site replication"),
    ],
)
def test_parse_replicate_add(name: str, ok: bool, reason: str) -> None:
    check = parse_replicate_add((DATA / name).read_text())
    assert (check.ok, check.reason) == (ok, reason)


def test_parse_add_initial_sync_error() -> None:
    text = json.dumps({"success": True, "status": "ok", "initialSyncErrorMessage": "bucket x"})
    assert parse_replicate_add(text).reason == (
        "site replication added, initial sync failed: bucket x")


@pytest.mark.parametrize("text", [(DATA / "mc_error.json").read_text(), "mc: <ERROR> no json"])
def test_errors_raise(text: str) -> None:
    with pytest.raises(StepFailed, match="mc admin replicate add"):
        parse_replicate_add(text)


def test_error_envelope_message() -> None:
    with pytest.raises(StepFailed) as exc:
        parse_replicate_info((DATA / "mc_error.json").read_text())
    assert str(exc.value) == (
        "mc admin replicate info: Unable to add sites for replication (Site replication "
        "requires all sites to have the same IDP settings)")


def test_parse_replicate_info() -> None:
    info = parse_replicate_info((DATA / "mc_info_enabled.json").read_text())
    assert info.enabled
    assert [s[:2] for s in info.sites] == [("node1", "http://10.99.0.11:9000"),
                                           ("node2", "http://10.99.0.12:9000")]
    off = parse_replicate_info((DATA / "mc_info_disabled.json").read_text())
    assert (off.enabled, off.sites) == (False, ())


ENABLED = parse_replicate_info((DATA / "mc_info_enabled.json").read_text())

# (info, expected sites, ok, reason)
CONFIGURED = [
    (ENABLED, (N1, N2), True, "MinIO site replication enabled between node1, node2"),
    (SiteReplicationInfo(False, "", ()), (N1, N2), False,
     "MinIO site replication is not enabled"),
    (ENABLED, (N1, Site("node3", "10.99.0.13")), False,
     "site node3 is not in the replication group (members: node1, node2)"),
    (ENABLED, (N1, Site("node2", "10.99.0.99")), False,
     "site node2 is in the group as http://10.99.0.12:9000, expected http://10.99.0.99:9000"),
]


@pytest.mark.parametrize(("info", "sites", "ok", "reason"), CONFIGURED)
def test_replication_configured(info: SiteReplicationInfo, sites: tuple[Site, ...], ok: bool,
                                reason: str) -> None:
    check = replication_configured(info, sites)
    assert (check.ok, check.reason) == (ok, reason)
