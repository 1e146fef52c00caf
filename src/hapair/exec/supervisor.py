"""SupervisorRuntime: services as supervisord programs, driven with `supervisorctl -c CONFIG`.

Pure parts (tested against exact text): render_program() writes one `[program:NAME]` file;
parse_status() reads `supervisorctl status` lines. The runtime class only moves text through
a Transport. supervisorctl's exit codes are not reliable (status exits 3 for a stopped
program, `start` of a running one exits 0 with an ERROR line), so its output decides.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import signal
from collections.abc import Mapping, Sequence

from hapair.errors import CommandFailed, UsageError
from hapair.exec.runtime import ServiceSpec, ServiceState, ServiceStatus
from hapair.exec.transport import CommandResult, Transport

DEFAULT_CONFIG = "/etc/supervisor/supervisord.conf"
DEFAULT_INCLUDE_DIR = "/etc/supervisor/conf.d"
DEFAULT_LOG_DIR = "/var/log/supervisor"
LOG_MAX_BYTES = "10MB"
LOG_BACKUPS = 3

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# supervisord's ini parser starts a comment at ";" or "#" preceded by whitespace, even inside
# a value, and has no escape for it.
_INLINE_COMMENT = re.compile(r"\s[;#]")
_SHLEX_SAFE = re.compile(r"[\w@%+=:,./-]")
# supervisord replaces this text in every value before anything else, even after "%%".
_HERE = "%(here)s"

# -- rendering (pure) -------------------------------------------------------------------------


def render_program(spec: ServiceSpec, *, log_dir: str = DEFAULT_LOG_DIR) -> str:
    """The supervisord program section for `spec` (the whole content of NAME.conf)."""
    name = check_name(spec.name)
    if not spec.command:
        raise UsageError(f"service {name}: empty command")
    lines = [
        f"; hapair service {name}; written by hapair, local edits are overwritten",
        f"[program:{name}]",
        "command=" + " ".join(_command_arg(name, a) for a in spec.command),
        f"user={_ini_value(name, 'user', spec.user)}",
    ]
    if spec.directory:
        lines.append(f"directory={_ini_value(name, 'directory', spec.directory)}")
    if spec.environment:
        lines.append(f"environment={render_environment(name, spec.environment)}")
    lines += [
        f"autostart={_bool(spec.autostart)}",
        f"autorestart={_bool(spec.autorestart)}",
        f"stopsignal={_signal_name(name, spec.stop_signal)}",
        f"stopwaitsecs={int(spec.stop_wait_secs)}",
        # The whole process group gets the signal: a shell wrapper cannot orphan its children.
        "stopasgroup=true",
        "killasgroup=true",
        f"priority={int(spec.priority)}",
        "redirect_stderr=false",
    ]
    for stream, suffix in (("stdout", "out"), ("stderr", "err")):
        logfile = _ini_value(name, "log_dir", posixpath.join(log_dir, f"{name}.{suffix}.log"))
        lines += [
            f"{stream}_logfile={logfile}",
            f"{stream}_logfile_maxbytes={LOG_MAX_BYTES}",
            f"{stream}_logfile_backups={LOG_BACKUPS}",
        ]
    return "\n".join(lines) + "\n"


def render_environment(name: str, environment: Mapping[str, str]) -> str:
    """`KEY="value",…` as supervisord parses it (quotes are kept whole, never escaped)."""
    return ",".join(_env_pair(name, k, v) for k, v in sorted(environment.items()))


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"invalid service name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def _command_arg(name: str, arg: str) -> str:
    """One argument for supervisord's posix shlex.split, safe from its ini comment rule."""
    _no_control(name, "command", arg)
    quoted = shlex.quote(arg)
    if _INLINE_COMMENT.search(quoted):
        # Quote each blank alone and backslash-escape the rest: no ";"/"#" follows a blank.
        quoted = "".join(
            f"'{c}'" if c.isspace() else c if _SHLEX_SAFE.match(c) else "\\" + c for c in arg
        )
    # supervisord expands %(…)s in values: double each "%"; then split "%(" with an empty
    # quoted string (every "(" sits inside single quotes or is escaped) so _HERE never shows.
    return quoted.replace("%", "%%").replace("%(", "%''(")


def _env_pair(name: str, key: str, value: str) -> str:
    where = f"environment {key}"
    if not _ENV_KEY.fullmatch(key):
        raise UsageError(f"service {name}: invalid environment variable name {key!r}")
    _no_control(name, where, value)
    quote = "'" if '"' in value else '"'
    problem = ""
    if _INLINE_COMMENT.search(value):
        problem = "a blank followed by ';' or '#'"
    elif _HERE in value:
        problem = repr(_HERE)
    elif quote in value and quote == "'":
        problem = "both kinds of quote"
    elif value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        problem = "a quote at its start or end"
    if problem:
        raise UsageError(
            f"service {name}: {where}: supervisord cannot express a value with {problem}; "
            "pass it in a file instead"
        )
    return f"{key}={quote}{value}{quote}".replace("%", "%%")


def _ini_value(name: str, field: str, value: str) -> str:
    _no_control(name, field, value)
    if value != value.strip() or not value or _INLINE_COMMENT.search(value) or _HERE in value:
        raise UsageError(f"service {name}: {field} {value!r} cannot be written to supervisord")
    return value.replace("%", "%%")


def _no_control(name: str, field: str, value: str) -> None:
    if any(c in value for c in "\n\r\0"):
        raise UsageError(f"service {name}: {field} contains a newline or NUL")


def _signal_name(name: str, value: str) -> str:
    sig = value.strip().upper().removeprefix("SIG")
    if not hasattr(signal, "SIG" + sig) or sig.startswith("_"):
        raise UsageError(f"service {name}: unknown stop signal {value!r}")
    return sig


def _bool(value: bool) -> str:
    return "true" if value else "false"


# -- parsing (pure) ---------------------------------------------------------------------------

_STATES = {
    "RUNNING": ServiceState.RUNNING,
    "STARTING": ServiceState.STARTING,
    # Still alive while it stops: never report it as stopped too early.
    "STOPPING": ServiceState.RUNNING,
    "STOPPED": ServiceState.STOPPED,
    "EXITED": ServiceState.FAILED,
    "BACKOFF": ServiceState.FAILED,
    "FATAL": ServiceState.FAILED,
    "UNKNOWN": ServiceState.FAILED,
}
_STATUS_LINE = re.compile(
    r"(?P<name>\S+)\s+(?P<state>" + "|".join(_STATES) + r")(?:\s+(?P<desc>.*?))?\s*"
)
_ERROR_LINE = re.compile(r"(?P<name>\S+?): ERROR \((?P<error>[^)]*)\)\s*")
_PID = re.compile(r"\bpid (\d+)")
_ABSENT_ERRORS = ("no such process", "no such group")


def parse_status(output: str) -> list[ServiceStatus]:
    """Parse `supervisorctl status` output; raises ValueError on a line it does not know."""
    statuses = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if m := _STATUS_LINE.fullmatch(line):
            desc = m["desc"] or ""
            pid = _PID.search(desc) if m["state"] == "RUNNING" else None
            statuses.append(
                ServiceStatus(
                    name=m["name"],
                    state=_STATES[m["state"]],
                    pid=int(pid[1]) if pid else None,
                    detail=f"{m['state']} {desc}".strip(),
                )
            )
        elif (m := _ERROR_LINE.fullmatch(line)) and m["error"] in _ABSENT_ERRORS:
            statuses.append(ServiceStatus(m["name"], ServiceState.ABSENT, detail=m["error"]))
        else:
            raise ValueError(f"unexpected supervisorctl status line: {line!r}")
    return statuses


def action_errors(output: str, tolerated: Sequence[str] = ()) -> list[str]:
    """ERROR lines of start/stop/restart/update output, minus the tolerated reasons.

    A reply with no line of the expected shape at all ("NAME: …", e.g. the socket is missing)
    counts as an error too.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = []
    for line in lines:
        m = _ERROR_LINE.fullmatch(line)
        reason = m["error"] if m else line if line.lower().startswith("error") else None
        if reason is not None and not any(t in reason for t in tolerated):
            errors.append(line)
    if not errors and lines and not any(re.match(r"\S+: ", ln) for ln in lines):
        errors = lines
    return errors


# -- the runtime ------------------------------------------------------------------------------


class SupervisorRuntime:
    def __init__(
        self,
        transport: Transport,
        config: str = DEFAULT_CONFIG,
        include_dir: str = DEFAULT_INCLUDE_DIR,
        *,
        log_dir: str = DEFAULT_LOG_DIR,
        timeout: float = 150.0,  # above any stopwaitsecs: `stop` waits for the process
    ) -> None:
        self.transport = transport
        self.config = config
        self.include_dir = include_dir
        self.log_dir = log_dir
        self.timeout = timeout

    def conf_path(self, name: str) -> str:
        return posixpath.join(self.include_dir, f"{check_name(name)}.conf")

    def log_paths(self, name: str) -> tuple[str, str]:
        base = posixpath.join(self.log_dir, check_name(name))
        return f"{base}.out.log", f"{base}.err.log"

    def ctl_argv(self, *args: str) -> list[str]:
        return ["supervisorctl", "-c", self.config, *args]

    def define(self, spec: ServiceSpec) -> None:
        """Write NAME.conf, then reread + update: a new or changed program is (re)started by
        supervisord when autostart is on; an unchanged one is left alone.

        If supervisord rejects the file, the previous one is put back: a bad file in the
        include dir would block every later reread.
        """
        text = render_program(spec, log_dir=self.log_dir)
        path = self.conf_path(spec.name)
        previous = self._read_or_none(path)
        self.transport.write_file(path, text, mode=0o600)
        try:
            self._ctl("reread")
        except CommandFailed:
            if previous is None:
                self.transport.run(["rm", "-f", path])
            else:
                self.transport.write_file(path, previous, mode=0o600)
            raise
        self._update(spec.name)

    def remove(self, name: str) -> None:
        """Stop, delete the definition, and drop it from supervisord (absent is fine)."""
        self._action("stop", name, tolerated=("not running", *_ABSENT_ERRORS))
        self.transport.run(["rm", "-f", self.conf_path(name)])
        self._ctl("reread")
        self._update(name, tolerated=_ABSENT_ERRORS)

    def start(self, name: str) -> None:
        result = self._action("start", name, tolerated=("already started",))
        if "already started" in result.stdout:
            # supervisord says "already started" for BACKOFF too: a failing program is not fine.
            st = self.status(name)
            if st.state is ServiceState.FAILED:
                raise self._failure(result, name, [f"{name}: {st.detail}"])

    def stop(self, name: str) -> None:
        self._action("stop", name, tolerated=("not running",))

    def restart(self, name: str) -> None:
        self._action("restart", name, tolerated=("not running",))

    def status(self, name: str) -> ServiceStatus:
        result, statuses = self._status(check_name(name))
        for st in statuses:
            if st.name == name:
                return st
        raise _failed(result, f"no status line for {name}")

    def status_all(self) -> list[ServiceStatus]:
        return self._status()[1]

    def logs(self, name: str, lines: int = 100) -> str:
        """The last `lines` of the program's stdout and stderr logs, each under a header."""
        result = self.transport.run(
            ["tail", "-n", str(max(1, int(lines))), *self.log_paths(name)], check=False
        )
        return result.stdout

    # -- helpers ----------------------------------------------------------------------------

    def _ctl(self, *args: str, check: bool = True) -> CommandResult:
        return self.transport.run(self.ctl_argv(*args), timeout=self.timeout, check=check)

    def _status(self, *names: str) -> tuple[CommandResult, list[ServiceStatus]]:
        # Exit 3 (not running) and 4 (no such process) are answers, not failures.
        result = self._ctl("status", *names, check=False)
        try:
            return result, parse_status(result.stdout)
        except ValueError as e:
            raise _failed(result, str(e)) from None

    def _update(self, name: str, tolerated: Sequence[str] = ()) -> None:
        result = self._ctl("update", check_name(name), check=False)
        if _unexplained(result, tolerated):
            raise _failed(result)

    def _action(self, verb: str, name: str, tolerated: Sequence[str]) -> CommandResult:
        result = self._ctl(verb, check_name(name), check=False)
        errors = _unexplained(result, tolerated)
        if errors:
            raise self._failure(result, name, errors)
        return result

    def _failure(self, result: CommandResult, name: str, errors: list[str]) -> CommandFailed:
        # The program's own words say why it would not start: add the end of its stderr log.
        _, err_log = self.log_paths(name)
        tail = self.transport.run(["tail", "-n", "20", err_log], check=False).stdout
        return CommandFailed(
            self.transport.name,
            result.argv,
            result.returncode or 1,
            "\n".join([*tail.splitlines(), *errors]),
        )

    def _read_or_none(self, path: str) -> bytes | None:
        try:
            return self.transport.read_file(path)
        except FileNotFoundError:
            return None


def _unexplained(result: CommandResult, tolerated: Sequence[str]) -> list[str]:
    """The errors in a supervisorctl reply that are not tolerated; a non-zero exit that no
    ERROR line explains is an error too."""
    text = result.stdout + result.stderr
    errors = action_errors(text, tolerated)
    if not errors and result.returncode != 0 and not action_errors(text):
        errors = [text.strip() or f"exit status {result.returncode}"]
    return errors


def _failed(result: CommandResult, why: str = "") -> CommandFailed:
    text = "\n".join(x for x in (result.stdout, result.stderr, why) if x.strip())
    return CommandFailed(result.host, result.argv, result.returncode or 1, text)
