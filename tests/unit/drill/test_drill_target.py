"""Which URLs a drill may load (hapair.drill.target) and LoadConfig validation."""

from __future__ import annotations

import pytest

from hapair.drill.load import LoadConfig, LoadGenerator, validate_config
from hapair.drill.target import same_origin_url, validate_target
from hapair.errors import ExitCode, HapairError, Refused, UsageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:18600", "http://127.0.0.1:18600/"),
        ("http://127.0.0.1:18600/", "http://127.0.0.1:18600/"),
        ("http://127.9.9.9/", "http://127.9.9.9/"),
        ("http://localhost:8000/cms", "http://localhost:8000/cms/"),
        ("https://10.99.0.10/", "https://10.99.0.10/"),
        ("http://10.99.0.0/", "http://10.99.0.0/"),
        ("http://10.99.0.255:8080/", "http://10.99.0.255:8080/"),
        ("http://[::1]:18600/", "http://[::1]:18600/"),
        ("http://[::ffff:10.99.0.10]/", "http://[::ffff:10.99.0.10]/"),
    ],
)
def test_allowed_targets(url: str, expected: str) -> None:
    assert validate_target(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://10.99.1.1/",
        "http://10.98.0.10/",
        "http://192.0.2.1/",
        "https://example.com/",
        "http://cms.lab/",  # a name: resolving it would already be traffic
        "http://[2001:db8::1]/",
        "http://0.0.0.0/",
    ],
)
def test_refused_targets_unless_allowed(url: str) -> None:
    with pytest.raises(Refused) as exc:
        validate_target(url)
    assert exc.value.exit_code == ExitCode.REFUSED
    assert "--allow-any-target" in str(exc.value)
    assert validate_target(url, allow_any_target=True).startswith(url.split("://")[0])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/", "http"),
        ("127.0.0.1:8000", "http"),
        ("http:///path", "no host"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://127.0.0.1/?x=1", "query"),
        ("http://127.0.0.1:99999/", "Port"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, why: str) -> None:
    with pytest.raises(UsageError) as exc:
        validate_target(url, allow_any_target=True)
    assert exc.value.exit_code == ExitCode.USAGE
    assert why in str(exc.value)
    assert "pw" not in str(exc.value)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/media/abc", "http://10.99.0.10/media/abc"),
        ("media/abc", "http://10.99.0.10/cms/media/abc"),
        ("http://10.99.0.10:80/media/abc", "http://10.99.0.10:80/media/abc"),
        ("http://10.99.0.11/media/abc", None),
        ("https://10.99.0.10/media/abc", None),
        ("//evil.example/media/abc", None),
    ],
)
def test_same_origin_url(link: str, expected: str | None) -> None:
    assert same_origin_url("http://10.99.0.10/cms/", link) == expected


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"duration": 0}, UsageError),
        ({"duration": -1.0}, UsageError),
        ({"rate": 0}, UsageError),
        ({"rate": 5000}, UsageError),
        ({"workers": 0}, UsageError),
        ({"workers": 65}, UsageError),
        ({"timeout": 0}, UsageError),
        ({"max_requests": 0}, UsageError),
        ({"max_requests": 10**7}, UsageError),
        ({"mix": {"article.delete": 1}}, UsageError),
        ({"mix": {"article.create": 0}}, UsageError),
        ({"url": "http://192.0.2.1/"}, Refused),
    ],
)
def test_config_validation(changes: dict[str, object], error: type[HapairError]) -> None:
    config = LoadConfig(**{"url": "http://127.0.0.1:18600/", **changes})  # type: ignore[arg-type]
    with pytest.raises(error):
        validate_config(config)
    with pytest.raises(error):  # the generator refuses before starting anything
        LoadGenerator(config)


def test_config_defaults_are_valid() -> None:
    assert validate_config(LoadConfig(url="http://127.0.0.1:18600")) == "http://127.0.0.1:18600/"
    assert (
        validate_config(LoadConfig(url="http://127.0.0.1/", duration=None)) == "http://127.0.0.1/"
    )
