"""Pure validation of API input (no Django import, unit-tested table-driven)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TITLE_MAX = 200
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 500
QUERY_MAX = 200
ID_MAX = 2**63 - 1  # PostgreSQL bigint: larger ids would be a database error, not a 404


class InvalidInput(Exception):
    """Bad client input; `fields` maps a field name to what is wrong with it."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


@dataclass(frozen=True)
class ArticleInput:
    title: str
    body: str


@dataclass(frozen=True)
class ListQuery:
    after: int | None
    before: int | None
    limit: int
    descending: bool
    title_contains: str


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this text (NUL byte, lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def validate_article(payload: object) -> ArticleInput:
    if not isinstance(payload, dict):
        raise InvalidInput("request body must be a JSON object")
    fields: dict[str, str] = {}
    title = payload.get("title")
    body = payload.get("body", "")
    if title is None:
        fields["title"] = "this field is required"
    elif not isinstance(title, str):
        fields["title"] = "must be a string"
    elif not title.strip():
        fields["title"] = "must not be blank"
    elif len(title) > TITLE_MAX:
        fields["title"] = f"at most {TITLE_MAX} characters"
    elif problem := text_problem(title):
        fields["title"] = problem
    if not isinstance(body, str):
        fields["body"] = "must be a string"
    elif problem := text_problem(body):
        fields["body"] = problem
    if fields:
        raise InvalidInput("invalid article", fields)
    assert isinstance(title, str) and isinstance(body, str)
    return ArticleInput(title=title, body=body)


def _id_param(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > ID_MAX:
        raise InvalidInput(f"{name} must be a non-negative integer", {name: "invalid"})
    return int(raw)


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """`after`/`before` (exclusive id bounds), `limit` (1..500), `order` asc|desc, `q`."""
    after = _id_param("after", params.get("after"))
    before = _id_param("before", params.get("before"))
    raw_limit = params.get("limit")
    limit = LIST_LIMIT_DEFAULT
    if raw_limit is not None:
        if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 6:
            raise InvalidInput("limit must be an integer", {"limit": "invalid"})
        limit = int(raw_limit)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise InvalidInput(
                f"limit must be between 1 and {LIST_LIMIT_MAX}", {"limit": "out of range"}
            )
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc", {"order": "invalid"})
    query = params.get("q", "")
    if len(query) > QUERY_MAX or text_problem(query):
        raise InvalidInput("q is too long or not valid text", {"q": "invalid"})
    return ListQuery(after, before, limit, order == "desc", query.strip())
