"""JSON-lines record of a drill, written as it runs so a crash still leaves the data.

Lines carry a "type": "run" (header: run id, URL, clocks), "request", "ack", and at the end
"check" (the checker's verdict per lost or unverified write). Session cookies are never
written. `read_records` loads a file back for offline metrics.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from hapair.drill.records import (
    Ack,
    RequestRecord,
    ack_from_dict,
    ack_to_dict,
    record_from_dict,
    record_to_dict,
)


class RecordWriter:
    """Thread-safe line writer; each line is flushed so `tail -f` shows the run."""

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh: IO[str] | None = path.open("a" if append else "w", encoding="utf-8")

    def write(self, kind: str, payload: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, **payload}, sort_keys=False, default=str)
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line + "\n")
            self._fh.flush()

    def request(self, rec: RequestRecord) -> None:
        self.write("request", record_to_dict(rec))

    def ack(self, ack: Ack) -> None:
        self.write("ack", ack_to_dict(ack))

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_records(path: Path) -> tuple[dict[str, Any], list[RequestRecord], list[Ack]]:
    """(run header, request records, acks) of a record file."""
    header: dict[str, Any] = {}
    recs: list[RequestRecord] = []
    acks: list[Ack] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            kind = d.pop("type", None)
            if kind == "run":
                header = d
            elif kind == "request":
                recs.append(record_from_dict(d))
            elif kind == "ack":
                acks.append(ack_from_dict(d))
    return header, recs, acks
