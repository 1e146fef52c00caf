"""Real services on loopback for the CMS tests: PostgreSQL 15, Redis, an S3 server (rclone),
the backend under gunicorn and the frontend under node. Every process is stopped by its pid.

Ports come from the range given to the CMS tests (127.0.0.1:18300-18399).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BACKEND_DIR = REPO / "cms" / "backend"
FRONTEND_DIR = REPO / "cms" / "frontend"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = Path("/usr/bin/redis-server")
NODE = Path(shutil.which("node") or "/usr/bin/node")
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
MEDIA_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Ports:
    postgres: int = 18310
    redis: int = 18311
    s3: int = 18312
    backend: int = 18313
    frontend: int = 18314
    spare_frontend: int = 18315
    dead: int = 18399  # nothing listens here: a master that does not exist


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll predicate until true; bounded, raising with `what` on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def stop_pid(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait, then SIGKILL: only the process we started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@dataclass
class Secrets:
    pg_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    s3_access: str = field(default_factory=lambda: "cms" + secrets.token_hex(6))
    s3_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    django_secret: str = field(default_factory=lambda: secrets.token_urlsafe(40))

    def values(self) -> list[str]:
        return [self.pg_password, self.redis_password, self.s3_secret, self.django_secret]


class Stack:
    """Start/stop helpers. Callers register stops so a failed start still cleans up."""

    def __init__(self, ports: Ports = Ports()) -> None:
        self.ports = ports
        self.secrets = Secrets()
        self.root = Path(tempfile.mkdtemp(prefix="cms-test-"))
        # initdb and postgres run as `postgres`: that user must own the directory.
        shutil.chown(self.root, "postgres", "postgres")
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen] = {}
        self.env_file = self.root / "cms.env"
        self.facts: dict[str, object] = {}

    # ---- generic -------------------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def stop(self, name: str) -> int | None:
        proc = self.procs.pop(name, None)
        return stop_pid(proc) if proc else None

    def wait_port(self, name: str, port: int, timeout: float = 30.0) -> None:
        def up() -> bool:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            return port_open(port)

        try:
            wait_until(f"{name} on port {port}", up, timeout)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail(name)}") from None

    def as_postgres(self, argv: list[str], stdin: str | None = None) -> None:
        result = subprocess.run(
            argv,
            input=stdin,
            text=True,
            capture_output=True,
            cwd=self.root,
            timeout=60,
            user="postgres",
            group="postgres",
            extra_groups=[],
        )
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr[-2000:]}")

    # ---- PostgreSQL ----------------------------------------------------------------------
    @property
    def pg_data(self) -> Path:
        return self.root / "pgdata"

    def init_postgres(self) -> None:
        pwfile = self.root / "pg-superuser.pw"  # initdb wants a superuser password file
        write_private(pwfile, secrets.token_urlsafe(18) + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        self.as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.pg_data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ]
        )
        pwfile.unlink()

    def start_postgres(self) -> None:
        options = f"-c listen_addresses={HOST} -p {self.ports.postgres} -k {self.root} -c fsync=off"
        log = self.log_path("postgres")
        log.touch()
        shutil.chown(log, "postgres", "postgres")
        self.as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )

    def stop_postgres(self) -> None:
        """pg_ctl stop as postgres; if that fails, signal the postmaster by its pid."""
        if not (self.pg_data / "postmaster.pid").exists():
            return
        try:
            self.as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.pg_data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ]
            )
        except (RuntimeError, subprocess.TimeoutExpired):
            pid = self.postmaster_pid()
            if pid:
                os.kill(pid, signal.SIGKILL)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pg_data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def create_owner(self) -> None:
        sql = (
            f"CREATE ROLE cms LOGIN PASSWORD '{self.secrets.pg_password}';\n"
            "CREATE DATABASE cms OWNER cms;\n"
        )
        # SQL (with the password) goes on stdin, never argv.
        self.as_postgres(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-h",
                str(self.root),
                "-p",
                str(self.ports.postgres),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                "-",
            ],
            stdin=sql,
        )

    def pg_connect(self):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=self.ports.postgres,
            dbname="cms",
            user="cms",
            password=self.secrets.pg_password,
            connect_timeout=5,
            autocommit=True,
        )

    # ---- Redis ---------------------------------------------------------------------------
    def start_redis(self) -> None:
        conf = self.root / "redis.conf"
        # The password lives in a 0600 config file, never in argv.
        write_private(
            conf,
            "\n".join(
                [
                    f"bind {HOST}",
                    f"port {self.ports.redis}",
                    "protected-mode yes",
                    f"requirepass {self.secrets.redis_password}",
                    f"dir {self.root}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    "",
                ]
            ),
        )
        self.spawn("redis", [str(REDIS_SERVER), str(conf)], {"PATH": "/usr/bin:/bin"}, self.root)
        self.wait_port("redis", self.ports.redis)

    def redis_client(self):  # -> redis.Redis
        import redis

        return redis.Redis(
            host=HOST,
            port=self.ports.redis,
            password=self.secrets.redis_password,
            socket_timeout=5,
            socket_connect_timeout=5,
        )

    # ---- S3 (rclone serve s3) ------------------------------------------------------------
    def start_s3(self) -> None:
        data = self.root / "s3data"
        data.mkdir(exist_ok=True)
        rclone_conf = self.root / "rclone.conf"
        write_private(rclone_conf, "")
        env = {
            "PATH": "/usr/bin:/bin",
            "RCLONE_CONFIG": str(rclone_conf),
            # Credentials through the environment (CSV-quoted), never argv.
            "RCLONE_AUTH_KEY": f'"{self.secrets.s3_access},{self.secrets.s3_secret}"',
        }
        argv = [
            str(VENV_BIN / "rclone"),
            "serve",
            "s3",
            "--addr",
            f"{HOST}:{self.ports.s3}",
            str(data),
        ]
        self.spawn("s3", argv, env, self.root)
        self.wait_port("s3", self.ports.s3)

    # ---- the CMS -------------------------------------------------------------------------
    def env_values(self) -> dict[str, str]:
        s = self.secrets
        return {
            "POSTGRES_HOST": HOST,
            "POSTGRES_PORT": str(self.ports.postgres),
            "POSTGRES_DB": "cms",
            "POSTGRES_USER": "cms",
            "POSTGRES_PASSWORD": s.pg_password,
            "REDIS_URL": f"redis://:{s.redis_password}@{HOST}:{self.ports.redis}/0",
            "MINIO_ENDPOINT": f"{HOST}:{self.ports.s3}",
            "MINIO_ACCESS_KEY": s.s3_access,
            "MINIO_SECRET_KEY": s.s3_secret,
            "MINIO_USE_SSL": "false",
            "DJANGO_SECRET_KEY": s.django_secret,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CMS_NODE_NAME": "cms-test-node",
            "CMS_MEDIA_MAX_BYTES": str(MEDIA_MAX_BYTES),
        }

    def write_env_file(self) -> None:
        lines = ["# CMS test configuration (0600)"]
        lines += [f"{key}={value}" for key, value in self.env_values().items()]
        write_private(self.env_file, "\n".join(lines) + "\n")

    def backend_env(self, env_file: Path | None = None) -> dict[str, str]:
        # A clean environment: the configuration comes from the env file only.
        return {
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "CMS_ENV_FILE": str(env_file or self.env_file),
        }

    def manage(self, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BACKEND_DIR,
            env=self.backend_env(env_file),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start_backend(self) -> None:
        argv = [
            str(VENV_BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "cms_backend.wsgi:application",
            "--bind",
            f"{HOST}:{self.ports.backend}",
            "--access-logfile",
            "-",
        ]
        self.spawn("backend", argv, self.backend_env(), BACKEND_DIR)
        self.wait_port("backend", self.ports.backend)
        url = f"http://{HOST}:{self.ports.backend}/health/liveness/"
        wait_until("backend liveness", lambda: httpx.get(url, timeout=2).status_code == 200)

    def frontend_env(self, port: int, backend_port: int) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "PORT": str(port),
            "HOST": HOST,
            "BACKEND_URL": f"http://{HOST}:{backend_port}",
            "BACKEND_TIMEOUT_MS": "2000",
            "CMS_NODE_NAME": "cms-test-node",
        }

    def start_frontend(
        self, name: str = "frontend", port: int | None = None, backend_port: int | None = None
    ) -> None:
        port = port or self.ports.frontend
        env = self.frontend_env(port, backend_port or self.ports.backend)
        self.spawn(name, [str(NODE), str(FRONTEND_DIR / "server.js")], env, FRONTEND_DIR)
        self.wait_port(name, port)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
