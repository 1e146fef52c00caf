"""The one table of the reference CMS."""

from django.db import models
from django.utils import timezone

from articles.params import TITLE_MAX


class Article(models.Model):
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "created_at": self.created_at.isoformat(),
        }
