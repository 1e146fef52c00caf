import pytest

from hapair.components.common import Plain
from hapair.components.storage.site import (
    S3Credentials,
    Site,
    SiteServer,
    rclone_auth_value,
    require_bucket,
    site_env_file,
    site_spec,
)
from hapair.errors import UsageError


def creds(access: str = "AKIAEXAMPLE", secret: str = "s3cr#t;=x") -> S3Credentials:
    return S3Credentials(Plain(access), Plain(secret))


@pytest.mark.parametrize(
    ("site", "url"),
    [
        (Site("node1", "10.99.0.11"), "http://10.99.0.11:9000"),
        (Site("node2", "fd00::12", 9100), "http://[fd00::12]:9100"),
        (Site("node1", "s3.example.net", 443, "https"), "https://s3.example.net:443"),
    ],
)
def test_site_url(site: Site, url: str) -> None:
    assert site.url == url


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "node 1", "address": "10.0.0.1"}, "storage site name"),
        ({"name": "n1", "address": "10.0.0.1 x"}, "address"),
        ({"name": "n1", "address": "10.0.0.1", "port": 0}, "port"),
        ({"name": "n1", "address": "10.0.0.1", "scheme": "ftp"}, "scheme"),
    ],
)
def test_site_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Site(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("access", "secret", "expected"),
    [
        ("AKIA", "plain", '"AKIA,plain"'),
        ("AKIA", 'q"uote', '"AKIA,q""uote"'),  # CSV doubles a quote inside the field
        ("AKIA", "s p#;=", '"AKIA,s p#;="'),
    ],
)
def test_rclone_auth_value(access: str, secret: str, expected: str) -> None:
    assert rclone_auth_value(creds(access, secret)) == expected


@pytest.mark.parametrize(
    ("access", "secret", "message"),
    [
        ("AK,IA", "x", "','"),
        ("AKIA", "a,b", "','"),
        ("AKIA", " padded", "blanks"),
        ("AKIA", "two\nlines", "single line"),
        ("", "x", "non-empty"),
    ],
)
def test_credentials_rejected(access: str, secret: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        rclone_auth_value(creds(access, secret))


def test_site_env_file_is_private_and_sh_quoted() -> None:
    server = SiteServer(listen=("10.99.0.12", "127.0.0.1"), port=9000, data_dir="/srv/s3")
    f = site_env_file(server, creds("AKIA", "it's"))
    assert (f.path, f.mode, f.owner, f.secret) == (
        "/etc/hapair/s3.env", 0o600, "hapair-s3:hapair-s3", True)
    assert f.content == "RCLONE_AUTH_KEY='\"AKIA,it'\"'\"'s\"'\n"
    assert "it's" not in repr(f)


def test_site_spec_keeps_keys_out_of_argv() -> None:
    server = SiteServer(listen=("10.99.0.12", "127.0.0.1"), port=9000, data_dir="/srv/s3")
    spec = site_spec(server)
    assert spec.name == "s3"
    assert spec.command == (
        "sh", "-c",
        "set -a; . /etc/hapair/s3.env; exec /opt/hapair/venv/bin/rclone serve s3 "
        "--addr 10.99.0.12:9000 --addr 127.0.0.1:9000 --config /dev/null "
        "--cache-dir /var/lib/hapair/s3-cache /srv/s3",
    )
    assert (spec.user, spec.directory, dict(spec.environment)) == (
        "hapair-s3", "/srv/s3", {"HOME": "/var/lib/hapair"})
    assert site_spec(server, "s3-node2").name == "s3-node2"


@pytest.mark.parametrize(
    ("bucket", "ok"),
    [("media-public", True), ("a.b-c", True), ("ab", False), ("Media", False),
     ("a..b", False), ("-ab", False), ("a b", False), ("x" * 64, False)],
)
def test_require_bucket(bucket: str, ok: bool) -> None:
    if ok:
        assert require_bucket(bucket, "b") == bucket
    else:
        with pytest.raises(UsageError):
            require_bucket(bucket, "b")
