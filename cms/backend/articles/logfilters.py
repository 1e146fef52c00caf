"""Logging filters (referenced by name from settings.LOGGING)."""

import logging


class SkipHealthProbes(logging.Filter):
    """Drop django.request's per-request lines for /health/: a load balancer probes every
    second, so an outage would flood the log. The readiness view logs state changes itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not str(getattr(request, "path", "")).startswith("/health")
