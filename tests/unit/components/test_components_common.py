import pytest

from hapair.components.common import (
    Check,
    Credential,
    Endpoint,
    Plain,
    RenderedFile,
    all_of,
    dump_yaml,
    require_abs_path,
    require_host,
    require_secret_text,
    require_token,
    split_curl_status,
)
from hapair.errors import StepFailed, UsageError


def test_plain_secret_never_shows_itself() -> None:
    secret = Plain("hunter2")
    cred = Credential("app", secret)
    assert "hunter2" not in f"{secret} {secret!r} {cred!r} {cred}"
    assert secret.reveal() == "hunter2"


def test_check_reason_is_one_line() -> None:
    assert Check.failed("a\n  b\tc").reason == "a b c"
    assert all_of([Check.passed("x"), Check.failed("y"), Check.failed("z")], "ok") == Check(
        False, "y")
    assert all_of([Check.passed("x")], "all good") == Check(True, "all good")


def test_rendered_secret_file_must_be_private() -> None:
    with pytest.raises(UsageError, match="0600"):
        RenderedFile("/etc/x.conf", "pw", mode=0o644, secret=True)
    assert "pw" not in repr(RenderedFile("/etc/x.conf", "pw", mode=0o600, secret=True))


@pytest.mark.parametrize("value", ["a b", "x\ny", "q'uote", 'd"q', "", "semi;colon", "#c"])
def test_require_token_refuses_config_injection(value: str) -> None:
    with pytest.raises(UsageError):
        require_token(value, "field")


@pytest.mark.parametrize("value", ["relative/path", "/with space", "/new\nline"])
def test_require_abs_path(value: str) -> None:
    with pytest.raises(UsageError, match="field"):
        require_abs_path(value, "field")


def test_hosts_and_endpoints() -> None:
    assert require_host("10.99.0.11", "h") == "10.99.0.11"
    assert require_host("db-1.internal", "h") == "db-1.internal"
    with pytest.raises(UsageError):
        require_host("10.0.0.1:22", "h")
    assert str(Endpoint("10.0.0.1", 2379)) == "10.0.0.1:2379"
    with pytest.raises(UsageError, match="port"):
        Endpoint("10.0.0.1", 70000)


def test_secret_text_refuses_multiline() -> None:
    with pytest.raises(UsageError, match="single line"):
        require_secret_text(Plain("a\nb"), "pw")
    with pytest.raises(UsageError):
        require_secret_text(Plain(""), "pw")


def test_yaml_quotes_yaml11_booleans_and_keeps_order() -> None:
    text = dump_yaml({"z": "yes", "a": "on", "num": "010", "plain": "abc"}, header="hi")
    assert text.splitlines()[:3] == ["# hi", "%YAML 1.1", "---"]
    assert "z: 'yes'" in text and "a: 'on'" in text and "num: '010'" in text
    assert text.index("z:") < text.index("a:")
    assert "plain: abc" in text


def test_split_curl_status() -> None:
    assert split_curl_status('{"a": 1}\n503') == (503, '{"a": 1}')
    assert split_curl_status("\n000") == (0, "")
    with pytest.raises(StepFailed, match="no status code"):
        split_curl_status("curl: (7) Failed to connect")
