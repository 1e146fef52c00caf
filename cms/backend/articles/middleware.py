"""Host check, identification headers, HEAD bodies and dependency failures as 503 JSON."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from articles.failures import dependency_of, unavailable


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Nothing else calls get_host(): do it here so DJANGO_ALLOWED_HOSTS is enforced
        # (DisallowedHost becomes a 400 JSON through handler400).
        request.get_host()
        response = self.get_response(request)
        response["X-Served-By"] = "cms-backend"
        response["X-CMS-Node"] = settings.CMS_NODE_NAME
        if request.method == "HEAD" and not response.streaming and response.content:
            length = len(response.content)
            response.content = b""
            response["Content-Length"] = str(length)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        dependency = dependency_of(exc)
        return unavailable(dependency, exc) if dependency else None
