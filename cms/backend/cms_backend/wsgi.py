"""WSGI entry point: `gunicorn cms_backend.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms_backend.settings")

application = get_wsgi_application()
