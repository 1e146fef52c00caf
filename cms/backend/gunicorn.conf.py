"""gunicorn settings for the CMS backend: `gunicorn -c gunicorn.conf.py cms_backend.wsgi:application
--bind HOST:PORT`. Names unknown to an older gunicorn are ignored by it."""

import os

# Newer gunicorn opens a control socket under ~/.gunicorn by default; two instances on one
# host would fight over it and nothing here uses it.
control_socket_disable = True

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 30  # a worker stuck longer than this is killed and replaced
graceful_timeout = 20  # on SIGTERM, requests in flight get this long to finish
keepalive = 5
errorlog = "-"  # stderr
loglevel = "info"
