"""`hapair monitor`: a long-running exporter — Prometheus /metrics from each snapshot, and
JSON webhook alerts with de-duplication. See docs/monitoring.md."""

from hapair.monitor.alerts import Alert, Deduper, Notification, alerts_from
from hapair.monitor.damping import AlertPolicy
from hapair.monitor.loop import Monitor, PollResult
from hapair.monitor.metrics import Observed, SnapshotCollector, families, registry_with
from hapair.monitor.server import DEFAULT_LISTEN, MetricsServer, parse_listen
from hapair.monitor.state import Failover, FailoverTracker, backup_ages, backup_check
from hapair.monitor.webhook import WebhookSender

__all__ = [
    "DEFAULT_LISTEN",
    "Alert",
    "AlertPolicy",
    "Deduper",
    "Failover",
    "FailoverTracker",
    "MetricsServer",
    "Monitor",
    "Notification",
    "Observed",
    "PollResult",
    "SnapshotCollector",
    "WebhookSender",
    "alerts_from",
    "backup_ages",
    "backup_check",
    "families",
    "parse_listen",
    "registry_with",
]
