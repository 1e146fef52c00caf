"""The verdict every probe, health predicate and step verify returns: true or not, with a
one-line human reason either way (Patroni style: logged, shown, asserted in tests)."""

from __future__ import annotations

from dataclasses import dataclass


def one_line(text: str) -> str:
    """Collapse whitespace so a reason always fits one log line and one journal field."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", one_line(self.reason))

    @classmethod
    def passed(cls, reason: str) -> Check:
        return cls(True, reason)

    @classmethod
    def failed(cls, reason: str) -> Check:
        return cls(False, reason)
