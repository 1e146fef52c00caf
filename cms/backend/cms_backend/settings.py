"""Django settings, all taken from the environment (see cms_backend.config and cms/README.md).

Never dump these settings to a log: they hold the database, Redis and S3 secrets.
"""

from __future__ import annotations

import os
import socket

from django.core.exceptions import ImproperlyConfigured
from redis.backoff import ExponentialBackoff
from redis.exceptions import ReadOnlyError
from redis.retry import Retry

from cms_backend.config import ConfigError, build_config, merged_environment

try:
    CMS = build_config(merged_environment(os.environ), default_node=socket.gethostname())
except ConfigError as exc:
    raise ImproperlyConfigured(f"CMS configuration: {exc}") from None

SECRET_KEY = CMS.secret_key
DEBUG = CMS.debug
ALLOWED_HOSTS = list(CMS.allowed_hosts)

INSTALLED_APPS = ["articles"]

MIDDLEWARE = [
    "articles.middleware.ApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
]

ROOT_URLCONF = "cms_backend.urls"
WSGI_APPLICATION = "cms_backend.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": CMS.postgres_host,
        "PORT": str(CMS.postgres_port),
        "NAME": CMS.postgres_db,
        "USER": CMS.postgres_user,
        "PASSWORD": CMS.postgres_password,
        # A fresh connection per request: after a failover or a router change the next
        # request reaches the new primary instead of a pooled connection to the old one.
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"connect_timeout": 3, "application_name": "cms-backend"},
    }
}

# Redis: cache and sessions. Short socket timeouts so a dead Redis fails a request quickly;
# one quick retry so a connection cut by a failover is re-established transparently.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CMS.redis_url,
        "KEY_PREFIX": "cms",
        "OPTIONS": {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            # Ride through a master change (switchover or failover): a write that reaches the
            # old master after it became a replica fails READONLY, and one cut by the router
            # fails to connect; redis-py reconnects (through the local router, to the new
            # master) and retries, for about 3 s in all. Session and cache writes are
            # idempotent SETs, so a retry is safe.
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 8),
            "retry_on_error": [ReadOnlyError],
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

S3 = {
    "endpoint_url": CMS.s3_endpoint_url,
    "access_key": CMS.s3_access_key,
    "secret_key": CMS.s3_secret_key,
    "bucket_public": CMS.bucket_public,
    "bucket_private": CMS.bucket_private,
}
MEDIA_MAX_BYTES = CMS.media_max_bytes
CMS_NODE_NAME = CMS.node_name

# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"skip_health": {"()": "articles.logfilters.SkipHealthProbes"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": CMS.log_level},
    "loggers": {
        # Request bodies and headers never reach the log; only Django's one-line summaries.
        "django": {"handlers": ["stderr"], "level": CMS.log_level, "propagate": False},
        "django.request": {
            "handlers": ["stderr"],
            "level": CMS.log_level,
            "filters": ["skip_health"],
            "propagate": False,
        },
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
