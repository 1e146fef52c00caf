"""Where a switchover's time goes: named instants, relative to the start of the write pause.

The switchover marks each milestone (PAUSE done, Patroni accepted, /primary 200, each router
switched, RESUME…) once; the report carries them as seconds since the pause began, plus the
wall-clock instants of the pause and the resume so a load generator in another process can
line its own records up with them (bench/switchover does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timeline:
    """Milestones of one switchover. `clock`/`wall` are injectable for tests."""

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    started: float | None = None
    started_wall: float | None = None
    marks: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        """The write pause begins now (the instant every mark is relative to)."""
        self.started, self.started_wall = self.clock(), self.wall()

    def mark(self, name: str) -> float:
        """Record `name` now (first time only: a milestone happens once); seconds since start."""
        if self.started is None:
            raise RuntimeError("Timeline.mark before start")
        now = self.clock() - self.started
        with self._lock:
            self.marks.setdefault(name, now)
            return self.marks[name]

    def seconds(self, name: str) -> float | None:
        return self.marks.get(name)

    def wall_at(self, name: str) -> float | None:
        """The wall-clock (epoch) instant of a mark."""
        s = self.marks.get(name)
        return None if s is None or self.started_wall is None else self.started_wall + s

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.marks.items(), key=lambda kv: kv[1])
        return {"started_at_epoch": None if self.started_wall is None
                else round(self.started_wall, 3),
                "events_s": {name: round(s, 3) for name, s in ordered}}
