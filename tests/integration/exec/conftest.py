"""Real supervisord and sshd on loopback, each in a temp dir, stopped by the pid we started.

Ports come from this suite's range, 127.0.0.1:18100-18199. Every wait is bounded. The machine's
own /etc/supervisor and /etc/ssh are never read or touched (only /run/sshd, which sshd needs,
is created when missing and then left in place).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_live_helpers import (
    Sshd,
    Supervisord,
    port_open,
    require_free,
    started,
    temp_dir,
    wait_for,
)

SUPERVISORD = shutil.which("supervisord")
SSHD = "/usr/sbin/sshd"
SSHD_PORT = 18122

SUPERVISORD_CONF = """[unix_http_server]
file={d}/supervisor.sock
chmod=0700

[supervisord]
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}/log
nodaemon=true
user=root

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{d}/supervisor.sock

[include]
files = {d}/conf.d/*.conf
"""

SSHD_CONF = """Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
LogLevel VERBOSE
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs real local programs (root, supervisord, sshd) on loopback"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


# -- supervisord ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def supervisord() -> Iterator[Supervisord]:
    if os.geteuid() != 0 or SUPERVISORD is None:
        pytest.skip("needs root and supervisord")
    with temp_dir("hapair-sup-") as d:
        (d / "conf.d").mkdir()
        (d / "log").mkdir()
        config = d / "supervisord.conf"
        config.write_text(SUPERVISORD_CONF.format(d=d))
        argv = [SUPERVISORD, "-n", "-c", str(config)]
        with started(argv, d / "supervisord.out", d / "supervisord.log") as proc:
            sock = d / "supervisor.sock"
            wait_for(lambda: sock.exists() or proc.poll() is not None, "supervisord's socket")
            assert proc.poll() is None, "supervisord exited at start"
            yield Supervisord(d, str(config), str(d / "conf.d"), str(d / "log"))


# -- sshd -----------------------------------------------------------------------------------


def _keygen(path: Path, kind: str = "ed25519") -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "hapair-test", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.skip("needs root and openssh-server")
    require_free(SSHD_PORT)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir; kept
    with temp_dir("hapair-sshd-") as d:
        host_pub = _keygen(d / "host_ed25519")
        (d / "authorized_keys").write_text(_keygen(d / "client_ed25519") + "\n")
        _keygen(d / "stranger_ed25519")
        (d / "sshd_config").write_text(SSHD_CONF.format(d=d, port=SSHD_PORT))
        log = d / "sshd.log"
        argv = [SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(log)]
        with started(argv, d / "sshd.out", log) as proc:
            wait_for(lambda: port_open(SSHD_PORT) or proc.poll() is not None, "sshd to listen")
            assert proc.poll() is None, "sshd exited at start"
            yield Sshd(
                d,
                SSHD_PORT,
                host_pub,
                str(d / "client_ed25519"),
                str(d / "stranger_ed25519"),
                log,
            )
