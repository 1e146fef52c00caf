"""What a plan asks of its hosts: every step's action and check run once against recording
transports, for tests that look at the commands themselves (not at the steps' outcomes)."""

from __future__ import annotations

from collections.abc import Mapping

from hapair.exec.recording import RecordingTransport
from hapair.plan.step import Plan, StepContext

# What a Docker host can be expected to have besides Docker: coreutils, a POSIX shell, tar,
# iproute2 and python3 (the router's admin socket). psql, etcdctl, redis-cli and the like
# exist only in the containers (the lab's hosts have them all, so only such a test can tell).
DOCKER_HOST_TOOLS = frozenset({"sh", "true", "test", "cat", "mkdir", "rm", "mv", "chmod",
                               "chown", "install", "tar", "base64", "ip", "python3", "docker",
                               "docker-compose"})


def run_every_step(plan: Plan, transports: Mapping[str, RecordingTransport]) -> set[str]:
    """Run each step's action and check once; return the programs the hosts were asked to
    run (argv[0]). The fakes' answers may make steps fail: only the commands matter."""
    for step in plan.steps:
        sc = StepContext(step.host, dict(transports))  # type: ignore[arg-type]
        for call in (step.action.run if step.action else None, step.verify.check):
            if call is None:
                continue
            try:
                call(sc)
            except Exception:  # noqa: BLE001, S112 - a fake's answer, not the point here
                continue
    return {c[0] for t in transports.values() for c in t.commands}
