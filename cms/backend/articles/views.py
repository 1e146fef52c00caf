"""Articles, sessions, health and the JSON fallbacks (404/400/500)."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from articles import health
from articles.failures import dependency_of, unavailable
from articles.jsonhttp import allow_methods, invalid_input, json_error, read_json
from articles.models import Article
from articles.params import ID_MAX, InvalidInput, parse_list_query, validate_article

SESSION_KEY = "data"
log = logging.getLogger("cms.health")
_last_health: list[str] = [""]  # this process's last readiness state, to log changes only


@allow_methods("GET", "POST")
def article_collection(request: HttpRequest) -> HttpResponse:
    try:
        if request.method == "POST":
            return _create_article(request)
        query = parse_list_query(request.GET.dict())
    except InvalidInput as exc:
        return invalid_input(exc)
    articles = Article.objects.all()
    if query.after is not None:
        articles = articles.filter(id__gt=query.after)
    if query.before is not None:
        articles = articles.filter(id__lt=query.before)
    if query.title_contains:
        articles = articles.filter(title__icontains=query.title_contains)
    articles = articles.order_by("-id" if query.descending else "id")[: query.limit]
    return JsonResponse([article.as_json() for article in articles], safe=False)


def _create_article(request: HttpRequest) -> HttpResponse:
    data = validate_article(read_json(request))
    article = Article.objects.create(title=data.title, body=data.body)
    response = JsonResponse(article.as_json(), status=201)
    response["Location"] = f"/api/articles/{article.id}/"
    return response


@allow_methods("GET")
def article_item(request: HttpRequest, article_id: str) -> HttpResponse:
    number = int(article_id)
    article = Article.objects.filter(id=number).first() if number <= ID_MAX else None
    if article is None:
        return json_error(404, "not_found", f"no article {article_id}")
    return JsonResponse(article.as_json())


@allow_methods("GET", "POST")
def session_data(request: HttpRequest) -> HttpResponse:
    """POST stores a JSON object in the (Redis-backed) session; GET returns it."""
    if request.method == "POST":
        try:
            payload = read_json(request)
        except InvalidInput as exc:
            return invalid_input(exc)
        if not isinstance(payload, dict):
            return json_error(400, "invalid_input", "request body must be a JSON object")
        request.session[SESSION_KEY] = payload
        # Save here, not in the middleware, so a Redis failure becomes a 503 from this view.
        request.session.save()
        return JsonResponse(payload)
    return JsonResponse(request.session.get(SESSION_KEY, {}))


@allow_methods("GET")
def readiness(request: HttpRequest) -> HttpResponse:
    status, body = health.summarize(health.run_checks())
    state = body.get("reason", "ready")
    if state != _last_health[0]:
        _last_health[0] = state
        (log.info if status == 200 else log.warning)("readiness: %s", state)
    body["node"] = settings.CMS_NODE_NAME
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


@allow_methods("GET")
def liveness(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"status": "ok", "node": settings.CMS_NODE_NAME})
    response["Cache-Control"] = "no-store"
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(404, "not_found", f"no route for {request.path}")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(400, "bad_request", f"bad request ({type(exception).__name__})")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return json_error(403, "forbidden", "forbidden")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: still inside Django's except block, so the exception is known."""
    exc = sys.exception()
    dependency = dependency_of(exc) if exc else None
    if exc is not None and dependency:
        return unavailable(dependency, exc)
    return json_error(500, "internal_error", "internal server error")
