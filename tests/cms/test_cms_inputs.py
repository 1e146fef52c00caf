"""Pure input handling: media keys, article validation, list parameters."""

from __future__ import annotations

import pytest
from articles.keys import content_type_for, is_valid_key, new_key, sanitize_extension
from articles.params import InvalidInput, parse_list_query, validate_article

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("filename", "ext"),
    [
        ("photo.JPG", ".jpg"),
        ("archive.tar.gz", ".gz"),
        ("../../etc/passwd", ""),
        ("..\\..\\evil.PNG", ".png"),
        ("/abs/path/doc.pdf", ".pdf"),
        (".bashrc", ""),
        ("noext", ""),
        ("trailing.", ""),
        ("weird.p h p", ""),
        ("x.ÄBC", ""),
        ("x.verylongextension", ""),
        ("x.mp4 ", ".mp4"),
        ("", ""),
        ("..", ""),
    ],
)
def test_sanitize_extension(filename: str, ext: str) -> None:
    assert sanitize_extension(filename) == ext


def test_new_key_keeps_only_token_and_clean_extension() -> None:
    assert new_key("../My Photo.JPEG", TOKEN) == TOKEN + ".jpeg"
    assert new_key("x", TOKEN) == TOKEN
    assert is_valid_key(new_key("a.png"))
    assert new_key("a.png") != new_key("a.png")
    with pytest.raises(ValueError):
        new_key("a.png", "../../x")


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        (TOKEN, True),
        (TOKEN + ".png", True),
        ("../" + TOKEN, False),
        (TOKEN + ".PNG", False),
        (TOKEN[:-1], False),
        (TOKEN + ".png/x", False),
    ],
)
def test_is_valid_key(key: str, valid: bool) -> None:
    assert is_valid_key(key) is valid


@pytest.mark.parametrize(
    ("key", "declared", "expected"),
    [
        (TOKEN + ".png", "text/html", "image/png"),
        (TOKEN, "image/webp", "image/webp"),
        (TOKEN, "Image/WebP; charset=x", "image/webp"),
        (TOKEN, "not a type", "application/octet-stream"),
        (TOKEN, None, "application/octet-stream"),
    ],
)
def test_content_type_for(key: str, declared: str | None, expected: str) -> None:
    assert content_type_for(key, declared) == expected


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"title": "ok", "body": "b"}, set()),
        ({"title": "ok"}, set()),
        ({}, {"title"}),
        ({"title": None}, {"title"}),
        ({"title": "\t"}, {"title"}),
        ({"title": "x" * 201, "body": None}, {"title", "body"}),
        ({"title": "a\x00"}, {"title"}),
        ({"title": "ok", "body": "\udfff"}, {"body"}),
        ({"title": ["list"]}, {"title"}),
    ],
)
def test_validate_article(payload: dict, fields: set[str]) -> None:
    if not fields:
        assert validate_article(payload).title == "ok"
        return
    with pytest.raises(InvalidInput) as info:
        validate_article(payload)
    assert set(info.value.fields) == fields


@pytest.mark.parametrize("payload", [[], "x", 3, None])
def test_validate_article_needs_an_object(payload: object) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        validate_article(payload)


def test_list_query_defaults() -> None:
    query = parse_list_query({})
    assert (query.after, query.before, query.limit, query.descending, query.title_contains) == (
        None,
        None,
        50,
        False,
        "",
    )


@pytest.mark.parametrize(
    ("params", "attr", "value"),
    [
        ({"after": "0"}, "after", 0),
        ({"after": "9223372036854775807"}, "after", 2**63 - 1),
        ({"limit": "500"}, "limit", 500),
        ({"limit": "1"}, "limit", 1),
        ({"order": "desc"}, "descending", True),
        ({"q": "  Mixed Case "}, "title_contains", "Mixed Case"),
        ({"before": "10"}, "before", 10),
    ],
)
def test_list_query_accepts(params: dict[str, str], attr: str, value: object) -> None:
    assert getattr(parse_list_query(params), attr) == value


@pytest.mark.parametrize(
    "params",
    [
        {"after": "-1"},
        {"after": "9223372036854775808"},
        {"after": "١"},
        {"after": ""},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "1e3"},
        {"order": "DESC"},
        {"q": "x" * 201},
        {"before": "x"},
    ],
)
def test_list_query_rejects(params: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        parse_list_query(params)
