"""JSON responses and request helpers shared by the views."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from articles.params import InvalidInput

View = Callable[..., HttpResponse]


def json_error(status: int, code: str, message: str, **extra: object) -> JsonResponse:
    """Every error body: {"error": <code>, "message": <text>, ...}."""
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


def invalid_input(exc: InvalidInput) -> JsonResponse:
    extra = {"fields": exc.fields} if exc.fields else {}
    return json_error(400, "invalid_input", exc.message, **extra)


def read_json(request: HttpRequest) -> object:
    """The request body as JSON; InvalidInput when it is not."""
    try:
        raw = request.body
    except Exception as exc:  # RequestDataTooBig and friends: a client problem
        raise InvalidInput(f"cannot read request body: {type(exc).__name__}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("request body is not valid JSON") from None


def allow_methods(*methods: str) -> Callable[[View], View]:
    """405 JSON (with an Allow header) for any other method; HEAD is allowed with GET."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
    allow_header = ", ".join(sorted(allowed))

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(
                    405, "method_not_allowed", f"{request.method} not allowed here"
                )
                response["Allow"] = allow_header
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
