"""`hapair init` through click: offline and over a recorded SSH host; the pinned host key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from compose_fixtures import COMPOSE_FILE, ENV_FILE, EXPECTED, FIXTURE, assert_no_secret

from hapair.cli import init as init_cli
from hapair.cli.init import host_key_from_known_hosts, summary_lines
from hapair.errors import HapairError, UsageError
from hapair.exec.recording import RecordingTransport, Reply

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
RSA_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC"


@click.group()
def cli() -> None:
    pass


cli.add_command(init_cli.init)  # the line the lead adds to cli/main.py


def invoke(*args: str) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(cli, ["init", *args])
    exc = result.exception
    return result.exit_code, result.stdout, result.stderr, exc


def test_offline_prints_the_draft_on_stdout() -> None:
    code, out, _, exc = invoke("--compose", str(COMPOSE_FILE), "--env-file", str(ENV_FILE))
    assert (code, exc) == (0, None)
    assert out.replace(str(FIXTURE), "@FIXTURE@") == (EXPECTED / "draft-offline.yaml").read_text()


def test_offline_finds_the_default_files_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    shutil.copy(ENV_FILE, tmp_path / ".env.node1")
    shutil.copy(ENV_FILE, tmp_path / ".env")  # compose's default env file
    monkeypatch.chdir(tmp_path)
    code, out, _, _ = invoke()
    assert code == 0
    assert "project: idp-cms" in out


def test_json_is_one_document_with_the_discovered_model(tmp_path: Path) -> None:
    code, out, _, _ = invoke("--compose", str(COMPOSE_FILE), "--env-file", str(ENV_FILE),
                             "-o", "json", "--write", str(tmp_path / "inventory.yaml"))
    assert code == 0
    data = json.loads(out)
    assert data["roles"]["postgres"] == "postgres"
    assert data["roles"]["scheduler"] == "celery-beat"
    assert data["migrate_on_start"] == ["authoring"]
    assert data["draft"] == {"path": str(tmp_path / "inventory.yaml"), "todo": 13}
    assert_no_secret(out)
    assert (tmp_path / "inventory.yaml").read_text().startswith("# hapair inventory draft")


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "inventory.yaml"
    target.write_text("mine\n")
    code, _, _, exc = invoke("--compose", str(COMPOSE_FILE), "--write", str(target))
    assert isinstance(exc, UsageError) and "--force" in str(exc)
    assert target.read_text() == "mine\n"
    code, out, _, _ = invoke("--compose", str(COMPOSE_FILE), "--env-file", str(ENV_FILE),
                             "--write", str(target), "--force")
    assert code == 0
    assert "draft     " in out and "value(s) to fill in" in out


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "10.0.0.11", "--ssh-key", "/k"], "host key pinned"),
        (["--host", "10.0.0.11", "--host-key", HOST_KEY, "--known-hosts", "/kh"],
         "host key pinned"),
        (["--host", "10.0.0.11", "--host-key", HOST_KEY], "--ssh-key"),
        (["--host-key", HOST_KEY, "--compose", "x.yml"], "with --host only"),
    ],
)
def test_host_needs_a_pinned_key(args: list[str], problem: str) -> None:
    _, _, _, exc = invoke(*args)
    assert isinstance(exc, UsageError)
    assert problem in str(exc)


def test_over_ssh(monkeypatch: pytest.MonkeyPatch, original_host: RecordingTransport,
                  tmp_path: Path) -> None:
    opened: list[tuple] = []

    def fake_open(*args: object) -> RecordingTransport:
        opened.append(args)
        return original_host

    monkeypatch.setattr(init_cli, "open_transport", fake_open)
    key = tmp_path / "id_ed25519"
    code, out, _, exc = invoke("--host", "10.0.0.11", "--host-key", HOST_KEY,
                               "--ssh-key", str(key))
    assert (code, exc) == (0, None)
    assert opened == [("node1", "10.0.0.11", 22, "root", str(key), HOST_KEY)]
    assert original_host.closed
    assert f"host_key: {HOST_KEY}  # pinned when `init` connected" in out
    assert "version: 17  # read from the server" in out
    assert_no_secret(out)


def test_ssh_errors_surface_as_hapair_errors(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    t = RecordingTransport("node1", default=Reply(127, stderr="sh: docker: not found"))
    monkeypatch.setattr(init_cli, "open_transport", lambda *a: t)
    _, _, _, exc = invoke("--host", "10.0.0.11", "--host-key", HOST_KEY, "--ssh-key",
                          str(tmp_path / "k"))
    assert isinstance(exc, HapairError) and "no Docker Compose CLI" in str(exc)
    assert t.closed


# --- known_hosts -------------------------------------------------------------------------------


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


@pytest.mark.parametrize(
    ("text", "host", "port", "expected"),
    [
        (f"10.0.0.11 {HOST_KEY}\n", "10.0.0.11", 22, HOST_KEY),
        (f"node1,10.0.0.11 {HOST_KEY} comment\n", "10.0.0.11", 22, HOST_KEY),
        (f"10.0.0.* {HOST_KEY}\n", "10.0.0.11", 22, HOST_KEY),
        (f"10.0.0.*,!10.0.0.11 {HOST_KEY}\n", "10.0.0.11", 22, None),
        (f"[10.0.0.11]:2222 {HOST_KEY}\n", "10.0.0.11", 2222, HOST_KEY),
        (f"10.0.0.11 {HOST_KEY}\n", "10.0.0.11", 2222, None),
        (f"{hashed('10.0.0.11')} {HOST_KEY}\n", "10.0.0.11", 22, HOST_KEY),
        (f"{hashed('10.0.0.12')} {HOST_KEY}\n", "10.0.0.11", 22, None),
        (f"10.0.0.11 {RSA_KEY}\n10.0.0.11 {HOST_KEY}\n", "10.0.0.11", 22, HOST_KEY),
        (f"# comment\n@cert-authority *.example {RSA_KEY}\n", "10.0.0.11", 22, None),
    ],
)
def test_known_hosts(text: str, host: str, port: int, expected: str | None) -> None:
    assert host_key_from_known_hosts(text, host, port) == expected


def test_a_revoked_key_is_refused() -> None:
    with pytest.raises(UsageError, match="revokes"):
        host_key_from_known_hosts(f"@revoked 10.0.0.11 {HOST_KEY}\n", "10.0.0.11")


def test_known_hosts_file_without_the_host(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(f"10.0.0.99 {HOST_KEY}\n")
    _, _, _, exc = invoke("--host", "10.0.0.11", "--known-hosts", str(kh), "--ssh-key", "/k")
    assert isinstance(exc, UsageError) and "no key for 10.0.0.11" in str(exc)


def test_summary_lines() -> None:
    data = {"project": "p", "host": None, "roles": {"postgres": "db", "worker": ["w1", "w2"]},
            "draft": {"path": "inv.yaml", "todo": 3},
            "findings": [{"severity": "danger", "message": "bad"},
                         {"severity": "info", "message": "fyi"}]}
    assert summary_lines(data) == [
        "project   p (offline)",
        "services  postgres=db worker=w1,w2",
        "draft     inv.yaml: 3 value(s) to fill in",
        "findings  1 danger, 1 info",
        "  [danger] bad",
    ]
