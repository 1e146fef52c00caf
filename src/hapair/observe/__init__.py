"""Observing the pair: one frozen snapshot (gather.py does the I/O), warnings and named
checks as pure functions of it. Used by `hapair status`, `hapair check` and `hapair monitor`.
"""

from hapair.observe.checks import HealthCheck, failing, run_checks
from hapair.observe.gather import Io, gather
from hapair.observe.snapshot import Fact, PairSnapshot
from hapair.observe.targets import ReadOnlySecrets, Targets, targets_from_params
from hapair.observe.warnings import Limits, PairWarning, evaluate

__all__ = [
    "Fact",
    "HealthCheck",
    "Io",
    "Limits",
    "PairSnapshot",
    "PairWarning",
    "ReadOnlySecrets",
    "Targets",
    "evaluate",
    "failing",
    "gather",
    "run_checks",
    "targets_from_params",
]
