"""The audit log on each host (after Kamal's): one line per step hapair executed there.

Written through the host's Transport with a fixed argument list (`tee -a FILE`) and the line
on stdin, so nothing from the line ever lands in argv. Lines are redacted before they leave
the controller. Format, tab-separated:
`<UTC time>  run=<run id>  step=<step id>  result=<result>  operator=<user@controller>`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from datetime import datetime

from hapair.exec.journal import iso, utcnow
from hapair.exec.transport import Transport
from hapair.plan.step import Redact, no_redact, one_line

AUDIT_LOG = "/var/log/hapair/audit.log"


def audit_line(ts: str, run_id: str, step_id: str, result: str, operator: str) -> str:
    fields = [ts, f"run={run_id}", f"step={step_id}", f"result={result}", f"operator={operator}"]
    return "\t".join(one_line(f) for f in fields) + "\n"


def append_argv(path: str = AUDIT_LOG) -> list[str]:
    return ["tee", "-a", "--", path]


class Audit:
    def __init__(
        self,
        transports: Mapping[str, Transport],
        run_id: str,
        operator: str,
        *,
        redact: Redact = no_redact,
        path: str = AUDIT_LOG,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._transports = transports
        self.run_id = run_id
        self.operator = operator
        self.path = path
        self._redact = redact
        self._now = now
        self._ready: set[str] = set()  # hosts whose log directory exists

    def record(self, host: str, step_id: str, result: str) -> None:
        t = self._transports[host]
        if host not in self._ready:
            t.run(["mkdir", "-p", "--", posixpath.dirname(self.path)], timeout=30.0)
            self._ready.add(host)
        line = audit_line(iso(self._now()), self.run_id, step_id, result, self.operator)
        t.run(append_argv(self.path), input=self._redact(line), timeout=30.0)
