"""Drill load generator and checker: failed requests, lost acknowledged writes, recovery.

from hapair.drill import LoadConfig, LoadGenerator, check_writes, build_report

gen = LoadGenerator(LoadConfig(url="http://10.99.0.10/", duration=None)).start()
t_fault = time.monotonic()            # …inject the fault, at this instant…
gen.stop()
result = gen.wait()
report = build_report(result, check_writes(result), faults={"node1 crash": t_fault})
report.ok, report.to_dict(), result.recovery_after(t_fault)
"""

from hapair.drill.checker import CheckResult, MissingWrite, check_acks, check_writes
from hapair.drill.load import LoadConfig, LoadGenerator, LoadResult, Progress
from hapair.drill.metrics import Metrics, summarize
from hapair.drill.report import DrillReport, build_report, render_table

__all__ = [
    "CheckResult",
    "DrillReport",
    "LoadConfig",
    "LoadGenerator",
    "LoadResult",
    "Metrics",
    "MissingWrite",
    "Progress",
    "build_report",
    "check_acks",
    "check_writes",
    "render_table",
    "summarize",
]
