"""Discovery against the recorded transcript of the original server, and offline from its
files: the same model either way, read-only commands only, no secret anywhere."""

from __future__ import annotations

import json

import pytest
from compose_fixtures import (
    BASE,
    COMPOSE_FILE,
    ENV_FILE,
    PS_IDS,
    assert_no_secret,
    container_id,
    recorded,
    script_host,
)

from hapair.compose.collect import discover_offline, discover_remote
from hapair.compose.discovery import (
    parse_compose_ls,
    parse_config_json,
    parse_inspect,
    parse_pg_binary_version,
    parse_pg_data_version,
    parse_project,
    parse_ps,
    parse_redis_version,
)
from hapair.compose.model import Mount, PortBinding, Redactor
from hapair.errors import UsageError
from hapair.exec.recording import RecordingTransport, Reply


def test_remote_discovery_runs_only_read_only_commands(
    original_host: RecordingTransport,
) -> None:
    discover_remote(original_host)
    pg, redis = container_id("postgres"), container_id("redis")
    assert original_host.commands == [
        ("docker", "compose", "version"),
        tuple(PS_IDS),
        ("docker", "inspect", *recorded("ps-ids.txt").split()),
        (*BASE, "config", "--format", "json"),
        (*BASE, "ps", "-a", "--format", "json"),
        ("docker", "exec", pg, "postgres", "--version"),
        ("docker", "exec", pg, "cat", "/var/lib/postgresql/data/pgdata/PG_VERSION"),
        ("docker", "exec", redis, "redis-server", "--version"),
    ]
    assert not [c for c in original_host.calls if c.kind == "write_file"]


def test_remote_discovery_finds_project_files_and_env_from_labels(
    original_host: RecordingTransport,
) -> None:
    stack = discover_remote(original_host)
    assert stack.project.name == "idp-cms"
    assert stack.files == ("/opt/idp-cms/docker-compose.yml",)
    assert stack.env_files == ("/opt/idp-cms/.env.node1",)
    assert stack.cli == "docker compose"
    assert stack.host == "node1"


def test_postgres_major_comes_from_the_server_not_the_tag(
    original_host: RecordingTransport,
) -> None:
    fact = discover_remote(original_host).versions["postgres"]
    assert (fact.major, fact.value, fact.source, fact.verified) == (
        17, "17.2", "data directory", True)
    assert "PG_VERSION says 17" in fact.detail


def test_a_server_that_disagrees_with_its_tag_is_believed_and_flagged(
    original_host: RecordingTransport,
) -> None:
    pg = container_id("postgres")
    original_host.on(["docker", "exec", pg, "cat", "/var/lib/postgresql/data/pgdata/PG_VERSION"],
                     stdout="16\n")
    stack = discover_remote(original_host)
    assert stack.versions["postgres"].major == 16
    assert [f.message for f in stack.findings if f.code == "pg-tag-mismatch"] == [
        "postgres's image tag says 17 but the server runs 16: hapair uses 16 for the standby"]


def test_version_stays_unverified_when_the_container_cannot_be_asked(
    original_host: RecordingTransport,
) -> None:
    pg = container_id("postgres")
    original_host.on(["docker", "exec", pg, "postgres", "--version"], returncode=126,
                     stderr="OCI runtime exec failed: permission denied")
    original_host.on(["docker", "exec", pg, "cat", "/var/lib/postgresql/data/pgdata/PG_VERSION"],
                     returncode=1, stderr="cat: no such file")
    fact = discover_remote(original_host).versions["postgres"]
    assert (fact.major, fact.verified, fact.source) == (17, False, "image tag")
    assert "permission denied" in fact.detail


def test_remote_and_offline_discovery_agree(original_host: RecordingTransport) -> None:
    remote = discover_remote(original_host)
    offline = discover_offline([COMPOSE_FILE], [ENV_FILE])
    assert sorted(remote.roles, key=str) == sorted(offline.roles, key=str)
    assert remote.migrate_on_start == offline.migrate_on_start == ("authoring",)
    for name, r in remote.project.services.items():
        o = offline.project.services[name]
        for field in ("image", "command", "entrypoint", "ports", "mounts", "networks",
                      "restart", "healthcheck", "working_dir"):
            if field == "mounts":  # bind sources: /opt/idp-cms on the server, here locally
                assert [m.target for m in r.mounts] == [m.target for m in o.mounts], name
            else:
                assert getattr(r, field) == getattr(o, field), (name, field)
        assert sorted(r.depends_on) == sorted(o.depends_on), name
        assert {k: v for k, v in r.environment.items()} == {
            k: v for k, v in o.environment.items()}, name
    assert remote.project.volumes == offline.project.volumes
    assert remote.project.networks == offline.project.networks
    assert {f.code for f in remote.findings} - {"version-unverified"} == {
        f.code for f in offline.findings} - {"version-unverified"}


def test_containers_are_attached_with_their_state(original_host: RecordingTransport) -> None:
    stack = discover_remote(original_host)
    pg = stack.project.services["postgres"].containers[0]
    assert (pg.name, pg.state, pg.health, pg.restart_policy) == (
        "idp-cms-postgres-1", "running", "healthy", "unless-stopped")
    assert pg.volumes == (("idp-cms_pgdata", "/var/lib/postgresql/data"),)
    assert pg.addresses == (("idp-cms_cms", "172.28.0.10"),)
    setup = stack.project.services["minio-setup"].containers[0]
    assert (setup.state, setup.exit_code) == ("exited", 0)


def test_no_secret_in_the_discovered_model(original_host: RecordingTransport) -> None:
    remote = json.dumps(discover_remote(original_host).to_dict())
    offline = json.dumps(discover_offline([COMPOSE_FILE], [ENV_FILE]).to_dict())
    for text in (remote, offline):
        assert_no_secret(text)
        assert '"POSTGRES_PASSWORD": "***"' in text
        assert "postgres://idp:***@postgres:5432/idp_cms" in text
        assert "redis://:***@redis:6379/0" in text


def test_variables_compose_warns_about_become_findings(
    original_host: RecordingTransport,
) -> None:
    original_host.on([*BASE, "config", "--format", "json"], stdout=recorded("config.json"),
                     stderr='time="2025-06-09T10:41:12Z" level=warning msg="The \\"SMTP_PASSWORD'
                            '\\" variable is not set. Defaulting to a blank string."\n')
    found = [f for f in discover_remote(original_host).findings if f.code == "unset-variable"]
    assert [f.message.split(" ")[0] for f in found] == ["${SMTP_PASSWORD}"]
    original_host.on([*BASE, "config", "--format", "json"], stdout=recorded("config.json"),
                     stderr='WARN[0000] The "SMTP_USER" variable is not set. Defaulting to a '
                            'blank string.\n')
    found = [f for f in discover_remote(original_host).findings if f.code == "unset-variable"]
    assert [f.message.split(" ")[0] for f in found] == ["${SMTP_USER}"]


def test_docker_compose_v1_fallback() -> None:
    """Only docker-compose 1.29: `config` prints YAML, and there is no `ps --format json`."""
    v1 = ["docker-compose", "-p", "idp-cms", "-f", "/opt/idp-cms/docker-compose.yml",
          "--env-file", "/opt/idp-cms/.env.node1"]
    t = script_host(RecordingTransport("node1", default=Reply(99, stderr="not scripted")),
                    base=v1)
    t.on(["docker", "compose", "version"], returncode=125,
         stderr="docker: 'compose' is not a docker command.")
    t.on(["docker-compose", "version"], stdout="docker-compose version 1.29.2, build unknown\n")
    config = json.loads(recorded("config.json"))
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(config, buf)
    t.on([*v1, "config"], stdout=buf.getvalue())
    stack = discover_remote(t)
    assert stack.cli == "docker-compose"
    assert [*v1, "ps", "-a", "--format", "json"] not in [list(c) for c in t.commands]
    assert stack.service_for("postgres") is not None
    assert stack.versions["postgres"].verified


@pytest.mark.parametrize(
    ("ids", "projects", "problem"),
    [
        ("", None, "no container of any compose project"),
        ("", "shop", "no container of project shop"),
    ],
)
def test_nothing_to_discover(ids: str, projects: str | None, problem: str) -> None:
    t = RecordingTransport("node1")
    t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
    t.on_prefix(["docker", "ps"], stdout=ids)
    with pytest.raises(UsageError, match=problem):
        discover_remote(t, project=projects)


def test_several_projects_need_a_choice(original_host: RecordingTransport) -> None:
    rows = json.loads(recorded("inspect.json"))
    rows[0]["Config"]["Labels"]["com.docker.compose.project"] = "other"
    original_host.on(["docker", "inspect", *recorded("ps-ids.txt").split()],
                     stdout=json.dumps(rows))
    with pytest.raises(UsageError, match=r"2 compose projects run here \(idp-cms, other\)"):
        discover_remote(original_host)


def test_given_files_and_project_are_used_as_given(original_host: RecordingTransport) -> None:
    base = ["docker", "compose", "-p", "idp-cms", "-f", "/srv/a.yml", "-f", "/srv/b.yml",
            "--env-file", "/opt/idp-cms/.env.node1"]
    script_host(original_host, base=base)
    original_host.on([*PS_IDS[:4], "label=com.docker.compose.project=idp-cms", *PS_IDS[5:]],
                     stdout=recorded("ps-ids.txt"))
    stack = discover_remote(original_host, project="idp-cms",
                            files=["/srv/a.yml", "/srv/b.yml"], env_files=[])
    assert stack.files == ("/srv/a.yml", "/srv/b.yml")
    assert stack.env_files == ("/opt/idp-cms/.env.node1",)  # still found from the labels


# --- the parsers on their own ----------------------------------------------------------------


def test_parse_ps_both_formats() -> None:
    lines = recorded("ps.json")
    as_array = json.dumps([json.loads(x) for x in lines.splitlines()])
    assert parse_ps(lines) == parse_ps(as_array)
    by_service = {e.service: e for e in parse_ps(lines)}
    assert (by_service["postgres"].state, by_service["postgres"].health) == ("running", "healthy")
    assert (by_service["minio-setup"].state, by_service["minio-setup"].exit_code) == ("exited", 0)
    assert parse_ps("") == []
    with pytest.raises(ValueError):
        parse_ps('{"Name": "x"}')
    with pytest.raises(ValueError):
        parse_ps("not json")


def test_parse_inspect_redacts_env() -> None:
    found = parse_inspect(recorded("inspect.json"), Redactor(["pg-Fixture-Secret-7f3a"]))
    pg = next(i for i in found if i.service == "postgres")
    assert pg.project == "idp-cms"
    assert pg.config_files == ("/opt/idp-cms/docker-compose.yml",)
    assert pg.env_files == ("/opt/idp-cms/.env.node1",)
    assert pg.container.env["POSTGRES_PASSWORD"] == "***"
    assert pg.container.env["DATABASE_URL"] == "postgres://idp:***@postgres:5432/idp_cms"
    assert pg.container.env["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    with pytest.raises(ValueError):
        parse_inspect("{}")


def test_parse_config_json_project() -> None:
    raw = parse_config_json(recorded("config.json"))
    proj = parse_project(raw, name="idp-cms", redactor=Redactor(), escaped_dollars=True)
    pg = proj.services["postgres"]
    assert pg.ports == (PortBinding(5432, "5432", "0.0.0.0"),)
    assert pg.mounts == (Mount("volume", "/var/lib/postgresql/data", "pgdata"),)
    assert pg.healthcheck == ("CMD-SHELL", "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}")
    assert proj.volume_name("pgdata") == "idp-cms_pgdata"
    assert proj.networks["cms"].subnets == ("172.28.0.0/16",)
    with pytest.raises(ValueError, match="no services"):
        parse_config_json("{}")


@pytest.mark.parametrize(
    ("raw", "volume", "real"),
    [
        ({"data": None}, "data", "p_data"),
        ({"data": {"name": "custom"}}, "data", "custom"),
        ({"data": {"external": True}}, "data", "data"),
        ({"data": {"external": {"name": "legacy"}}}, "data", "legacy"),
        ({"data": {"external": True, "name": "named"}}, "data", "named"),
    ],
)
def test_volume_real_names(raw: dict, volume: str, real: str) -> None:
    proj = parse_project({"services": {}, "volumes": raw}, name="p", redactor=Redactor())
    assert proj.volume_name(volume) == real


def test_version_parsers() -> None:
    assert parse_pg_binary_version(recorded("postgres-version.txt")) == (17, "17.2")
    assert parse_pg_binary_version("bash: postgres: not found") is None
    assert parse_pg_data_version("17\n") == 17
    assert parse_pg_data_version("") is None
    assert parse_redis_version(recorded("redis-version.txt")) == "7.2.7"
    assert parse_redis_version("nope") is None


def test_parse_compose_ls() -> None:
    rows = parse_compose_ls('[{"Name":"idp-cms","Status":"running(8), exited(1)",'
                            '"ConfigFiles":"/opt/idp-cms/a.yml,/opt/idp-cms/b.yml"}]')
    assert rows[0].config_files == ("/opt/idp-cms/a.yml", "/opt/idp-cms/b.yml")


def test_redactor_scrubs_values_and_url_passwords() -> None:
    red = Redactor.from_environments([{"DB_PASSWORD": "hunter22", "PORT": "5432", "X": "ab"}])
    assert red.text("psql -W hunter22") == "psql -W ***"
    assert red.text("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert red.env_value("API_TOKEN", "anything") == "***"
    assert red.env_value("PORT", "5432") == "5432"
    assert "hunter22" not in repr(red)
