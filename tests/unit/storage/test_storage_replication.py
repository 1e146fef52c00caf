import subprocess

import pytest

from hapair.components.common import Plain
from hapair.components.storage.replication import (
    PROGRAM,
    Pull,
    ReplicationSettings,
    copy_argv,
    copy_flags,
    rclone_conf_file,
    render_rclone_conf,
    render_script,
    replication_spec,
    script_file,
)
from hapair.components.storage.site import S3Credentials, Site
from hapair.errors import UsageError

N1 = Site("node1", "10.99.0.11")
N2 = Site("node2", "10.99.0.12")
CREDS = S3Credentials(Plain("AKIAEXAMPLE"), Plain("sec;ret#=1"))
BUCKETS = ("media-public", "media-private")
COMMON = ["--checksum", "--use-server-modtime", "--metadata", "--transfers", "4",
          "--checkers", "8", "--retries", "1", "--low-level-retries", "3",
          "--contimeout", "5s", "--timeout", "60s"]


def test_rclone_conf_exact() -> None:
    assert render_rclone_conf((N1, N2), CREDS, "s3").splitlines() == [
        "# hapair object replication remotes; written by hapair. Holds S3 keys: 0600.",
        "[node1]", "type = s3", "provider = Other", "env_auth = false",
        "access_key_id = AKIAEXAMPLE", "secret_access_key = sec;ret#=1",
        "endpoint = http://10.99.0.11:9000", "region = us-east-1", "force_path_style = true",
        "",
        "[node2]", "type = s3", "provider = Other", "env_auth = false",
        "access_key_id = AKIAEXAMPLE", "secret_access_key = sec;ret#=1",
        "endpoint = http://10.99.0.12:9000", "region = us-east-1", "force_path_style = true",
    ]
    assert "provider = Minio" in render_rclone_conf((N1, N2), CREDS, "minio")


def test_rclone_conf_file_is_private() -> None:
    f = rclone_conf_file((N1, N2), CREDS, "s3", ReplicationSettings(user="hapair-s3"))
    assert (f.path, f.mode, f.owner, f.secret) == (
        "/etc/hapair/storage/rclone.conf", 0o600, "hapair-s3", True)
    assert "sec;ret" not in repr(f)


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("full", []), ("seed", []), ("window", ["--no-traverse"]),
     ("reconcile", ["--ignore-existing"])],
)
def test_copy_flags(mode: str, extra: list[str]) -> None:
    assert copy_flags(ReplicationSettings(), mode) == COMMON + extra  # type: ignore[arg-type]


def test_copy_argv_seed_with_log() -> None:
    pull = Pull(N1, N2, BUCKETS)
    assert copy_argv(pull, "media-public", "seed", log_file="/var/lib/x/seed.log") == [
        "env", "-u", "AWS_CA_BUNDLE",
        "/usr/bin/rclone", "--config", "/etc/hapair/storage/rclone.conf", "copy",
        "node1:media-public", "node2:media-public", *COMMON,
        "--use-json-log", "--log-file", "/var/lib/x/seed.log", "--log-level", "INFO",
        "--stats", "5s", "--stats-log-level", "NOTICE",
    ]
    with pytest.raises(UsageError, match="not one of the replicated buckets"):
        copy_argv(pull, "other-bucket", "seed")


def test_never_sync_never_delete() -> None:
    # The engine's contract: copy only; no flag that deletes on the target.
    for mode in ("full", "window", "seed", "reconcile"):
        argv = copy_argv(Pull(N1, N2, BUCKETS), "media-public", mode)  # type: ignore[arg-type]
        assert argv[6] == "copy"
        assert not [a for a in argv if "delete" in a or a in ("sync", "move", "--remove")]


def test_script_lines() -> None:
    s = ReplicationSettings(interval_s=2, full_every_s=120, overlap_s=30,
                            rclone="/opt/hapair/venv/bin/rclone")
    lines = [ln.strip() for ln in render_script(Pull(N1, N2, BUCKETS, s)).splitlines()]
    for expected in [
        "RCLONE=/opt/hapair/venv/bin/rclone",
        "CONF=/etc/hapair/storage/rclone.conf",
        "STATE=/var/lib/hapair/storage/replication.json",
        'BUCKETS="media-public media-private"',
        "INTERVAL=2", "FULL_EVERY=120", "OVERLAP=30",
        'timeout --foreground -k 30 "$limit" "$RCLONE" --config "$CONF" copy \\',
        '"node1:$bucket" "node2:$bucket" ' + " ".join(COMMON) + ' "$@"',
        'copy_bucket "$bucket" 21600 $only || ok=false',
        'copy_bucket "$bucket" 600 --max-age "${age}s" --no-traverse $only || ok=false',
        "age=$((started - since + OVERLAP))",
        'only="--ignore-existing"',
        "unset AWS_CA_BUNDLE",
        "PRIMARY_URL=''",  # no URL: a one-way pull, the source always writes
    ]:
        assert expected in lines, expected
    code = [ln for ln in lines if not ln.startswith("#")]
    assert not [ln for ln in code if "sync" in ln.split() or "delete" in ln]


def test_script_follows_the_writer() -> None:
    pull = Pull(N1, N2, BUCKETS, source_primary_url="http://10.99.0.11:8008/primary")
    lines = [ln.strip() for ln in render_script(pull).splitlines()]
    assert "PRIMARY_URL=http://10.99.0.11:8008/primary" in lines
    assert ('curl -fsS -o /dev/null --connect-timeout 2 --max-time 3 "$PRIMARY_URL" '
            "2>/dev/null") in lines
    assert "if source_is_writer; then writer=true; else writer=false; fi" in lines


@pytest.mark.parametrize("url", ["https://x/primary", "http://x/p;rm", "http://x/$(id)",
                                 "http://a b"])
def test_pull_rejects_odd_primary_urls(url: str) -> None:
    with pytest.raises(UsageError, match="source_primary_url"):
        Pull(N1, N2, BUCKETS, source_primary_url=url)


def test_script_is_valid_sh() -> None:
    text = render_script(Pull(N1, N2, BUCKETS, source_primary_url="http://10.0.0.1:8008/primary"))
    result = subprocess.run(["sh", "-n"], input=text.encode(), capture_output=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_script_file_and_spec() -> None:
    pull = Pull(N2, N1, BUCKETS, ReplicationSettings(user="hapair-s3", config_dir="/etc/h"))
    f = script_file(pull)
    assert (f.path, f.mode, f.secret) == ("/etc/h/replicate.sh", 0o755, False)
    assert "# hapair object replication into node1 from node2" in f.content
    spec = replication_spec(pull)
    assert (spec.name, spec.command, spec.user, spec.directory) == (
        PROGRAM, ("/bin/sh", "/etc/h/replicate.sh"), "hapair-s3", "/var/lib/hapair/storage")
    assert spec.autostart and spec.autorestart and not spec.environment


@pytest.mark.parametrize(
    ("source", "target", "buckets", "message"),
    [
        (N1, N1, BUCKETS, "both node1"),
        (N1, N2, (), "no bucket"),
        (N1, N2, ("media-public", "media-public"), "appears twice"),
        (N1, N2, ("Bad_Bucket",), "not an S3 bucket name"),
    ],
)
def test_pull_rejects(source: Site, target: Site, buckets: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Pull(source, target, buckets)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"interval_s": 0}, "interval_s"), ({"rclone": "rclone"}, "rclone"),
     ({"state_dir": "/var/lib/x y"}, "state_dir"), ({"user": "a b"}, "user")],
)
def test_settings_reject(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ReplicationSettings(**kwargs)  # type: ignore[arg-type]
