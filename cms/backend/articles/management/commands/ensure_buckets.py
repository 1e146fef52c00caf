"""`manage.py ensure_buckets`: create the public and private media buckets if missing.

An explicit setup step (like `migrate`), never run at process start.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from articles import storage
from articles.failures import one_line


class Command(BaseCommand):
    help = "Create the public and private media buckets when they do not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        for bucket in (settings.S3["bucket_public"], settings.S3["bucket_private"]):
            try:
                created = storage.ensure_bucket(bucket)
            except (BotoCoreError, ClientError) as exc:
                raise CommandError(f"bucket {bucket}: {one_line(exc)}") from None
            self.stdout.write(f"{bucket}: {'created' if created else 'exists'}")
