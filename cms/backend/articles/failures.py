"""Map exceptions from the dependencies to a 503 naming the dependency (not a 500)."""

from __future__ import annotations

import logging

import botocore.exceptions
import redis.exceptions
from django.db import utils as db_utils
from django.http import JsonResponse

from articles.jsonhttp import json_error

log = logging.getLogger("cms.failures")

_DATABASE = (db_utils.OperationalError, db_utils.InterfaceError, db_utils.InternalError)


def dependency_of(exc: BaseException) -> str | None:
    """Which dependency an exception comes from, or None for a bug in our own code."""
    if isinstance(exc, _DATABASE):
        return "database"
    if isinstance(exc, redis.exceptions.RedisError):
        return "redis"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return "storage"
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return "storage" if status >= 500 or status == 0 else None
    return None


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A short reason for a response or a log line (driver messages hold no passwords)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]


def unavailable(dependency: str, exc: BaseException) -> JsonResponse:
    log.warning("%s unavailable: %s: %s", dependency, type(exc).__name__, one_line(exc))
    response = json_error(
        503, "unavailable", f"{dependency} unavailable: {one_line(exc)}", dependency=dependency
    )
    response["Retry-After"] = "1"
    return response
