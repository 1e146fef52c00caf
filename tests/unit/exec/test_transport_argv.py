"""wrap_argv and the file-moving argv builders (pure)."""

from __future__ import annotations

import pytest

from hapair.exec.files import atomic_write_argv, read_argv, temp_path_for
from hapair.exec.transport import wrap_argv


@pytest.mark.parametrize(
    ("argv", "user", "env", "expected"),
    [
        (["id"], None, None, ["id"]),
        (["id"], "postgres", None, ["runuser", "-u", "postgres", "--", "id"]),
        (["id"], None, {"B": "2", "A": "1"}, ["env", "A=1", "B=2", "id"]),
        (["psql"], "postgres", {"PGPORT": "5432"},
         ["runuser", "-u", "postgres", "--", "env", "PGPORT=5432", "psql"]),
        (["echo", "a b"], "", {}, ["echo", "a b"]),
    ],
)
def test_wrap_argv(argv: list[str], user: str | None, env: dict[str, str] | None,
                   expected: list[str]) -> None:
    assert wrap_argv(argv, user=user, env=env) == expected


@pytest.mark.parametrize(
    ("mode", "owner", "mode_arg", "umask_arg", "owner_arg"),
    [
        (0o600, None, "600", "177", ""),
        (0o644, "postgres", "644", "177", "postgres"),  # born 0600, opened up by chmod
        (0o400, "postgres:postgres", "400", "377", "postgres:postgres"),  # never writable
        (0o755, None, "755", "077", ""),
        (0o000, None, "0", "777", ""),
    ],
)
def test_atomic_write_argv(mode: int, owner: str | None, mode_arg: str, umask_arg: str,
                           owner_arg: str) -> None:
    argv = atomic_write_argv("/etc/x.conf", mode=mode, owner=owner, temp_path="/etc/.x.tmp")
    assert argv[:2] == ["sh", "-c"]
    assert argv[3:] == ["sh", "/etc/.x.tmp", mode_arg, "/etc/x.conf", umask_arg, owner_arg]


def test_atomic_write_snippet_is_fixed() -> None:
    a = atomic_write_argv("/a", mode=0o600)
    b = atomic_write_argv("/b/c", mode=0o644, owner="u")
    assert a[2] == b[2]  # only positional parameters vary, never the script


@pytest.mark.parametrize(("mode", "path"), [(0o10000, "/a"), (-1, "/a"), (0o600, ""),
                                            (0o600, "/dir/")])
def test_atomic_write_argv_refuses_nonsense(mode: int, path: str) -> None:
    with pytest.raises(ValueError):
        atomic_write_argv(path, mode=mode)


def test_temp_path_is_a_hidden_unique_sibling() -> None:
    a, b = temp_path_for("/etc/supervisor/conf.d/web.conf"), temp_path_for("/etc/x/web.conf")
    assert a.startswith("/etc/supervisor/conf.d/.web.conf.hapair-") and a.endswith(".tmp")
    assert temp_path_for("rel.conf").startswith(".rel.conf.")
    assert a.rsplit("/", 1)[1] != b.rsplit("/", 1)[1]


def test_read_argv() -> None:
    assert read_argv("/etc/a b")[3:] == ["sh", "/etc/a b"]
