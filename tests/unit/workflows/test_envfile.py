from hapair.workflows.upgrade.envfile import parse_env, redis_url_via, set_env

ENV = """# written by the lab
POSTGRES_HOST=127.0.0.1
POSTGRES_PORT=5432
POSTGRES_PASSWORD='it'"'"'s secret'
REDIS_URL='redis://:p%40ss@127.0.0.1:6379/0'
DJANGO_ALLOWED_HOSTS=10.99.0.10,localhost
"""


def test_parse_env_unquotes_values() -> None:
    values = parse_env(ENV)
    assert values["POSTGRES_PASSWORD"] == "it's secret"
    assert values["POSTGRES_PORT"] == "5432"
    assert "# written by the lab" not in values


def test_set_env_replaces_in_place_and_keeps_the_rest() -> None:
    out = set_env(ENV, {"POSTGRES_PORT": "6432", "NEW_KEY": "a b"})
    lines = out.splitlines()
    assert lines[0] == "# written by the lab"
    assert lines[2] == "POSTGRES_PORT=6432"
    assert lines[-1] == "NEW_KEY='a b'"
    assert parse_env(out)["POSTGRES_PASSWORD"] == "it's secret"


def test_redis_url_via_keeps_password_and_db() -> None:
    assert redis_url_via("redis://:p%40ss@127.0.0.1:6379/0", "127.0.0.1", 6380) == \
        "redis://:p%40ss@127.0.0.1:6380/0"
    assert redis_url_via("redis://10.0.0.1:6379", "127.0.0.1", 6380) == "redis://127.0.0.1:6380"
