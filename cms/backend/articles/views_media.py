"""Media upload to the public bucket, and streaming it back at /media/<key>."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError

from articles import storage
from articles.jsonhttp import allow_methods, json_error
from articles.keys import content_type_for, is_valid_key, new_key

CHUNK = 64 * 1024


@allow_methods("POST")
def upload(request: HttpRequest) -> HttpResponse:
    declared = request.META.get("CONTENT_LENGTH", "")
    if declared.isdigit() and int(declared) > settings.MEDIA_MAX_BYTES + 64 * 1024:
        # Refuse before Django spools the body to a temporary file.
        return _too_large()
    try:
        upload_file = request.FILES.get("file")
    except MultiPartParserError as exc:
        return json_error(400, "invalid_input", f"bad multipart body: {exc}")
    if upload_file is None:
        return json_error(
            400, "invalid_input", "multipart field 'file' is required", fields={"file": "required"}
        )
    size = upload_file.size or 0
    if size > settings.MEDIA_MAX_BYTES:
        return _too_large()
    digest = hashlib.sha256()
    for chunk in upload_file.chunks(CHUNK):
        digest.update(chunk)
    upload_file.seek(0)
    key = new_key(upload_file.name or "")
    content_type = content_type_for(key, upload_file.content_type)
    storage.put_object(key, upload_file, size, content_type)
    body = {"key": key, "url": f"/media/{key}", "size": size, "sha256": digest.hexdigest()}
    response = JsonResponse(body, status=201)
    response["Location"] = body["url"]
    return response


@allow_methods("GET")
def fetch(request: HttpRequest, key: str) -> HttpResponse:
    head_only = request.method == "HEAD"
    found = storage.get_object(key, head_only=head_only) if is_valid_key(key) else None
    if found is None:
        return json_error(404, "not_found", f"no media object {key}")
    content_type = found.get("ContentType") or content_type_for(key, None)
    if head_only:
        response: HttpResponse = HttpResponse(content_type=content_type)
    else:
        response = StreamingHttpResponse(_stream(found["Body"]), content_type=content_type)
    response["Content-Length"] = str(found.get("ContentLength", 0))
    response["X-Content-Type-Options"] = "nosniff"
    # Keys are never reused for other content.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    if found.get("ETag"):
        response["ETag"] = found["ETag"]
    return response


def _too_large() -> HttpResponse:
    return json_error(413, "too_large", f"file exceeds {settings.MEDIA_MAX_BYTES} bytes")


def _stream(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()
