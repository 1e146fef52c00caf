"""S3 access (MinIO or any S3 endpoint) through boto3, with bounded timeouts."""

from __future__ import annotations

import threading
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()

# Short timeouts and few attempts: a dead endpoint fails a request in seconds, never hangs it.
# Checksums only when required: S3-compatible servers differ in their support of the
# newer default (aws-chunked uploads with CRC trailers).
_PROFILES = {
    "data": {"connect_timeout": 2, "read_timeout": 20, "attempts": 2},
    "probe": {"connect_timeout": 1.5, "read_timeout": 1.5, "attempts": 1},
}


def client(profile: str = "data") -> Any:
    """One boto3 client per profile and process (boto3 clients are thread-safe)."""
    with _lock:
        if profile not in _clients:
            _clients[profile] = _make_client(**_PROFILES[profile])
        return _clients[profile]


def _make_client(connect_timeout: float, read_timeout: float, attempts: int) -> Any:
    s3 = settings.S3
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name="us-east-1",
        config=config,
    )


def public_bucket() -> str:
    return str(settings.S3["bucket_public"])


def put_object(key: str, body: BinaryIO, size: int, content_type: str) -> None:
    client().put_object(
        Bucket=public_bucket(), Key=key, Body=body, ContentLength=size, ContentType=content_type
    )


def get_object(key: str, head_only: bool = False) -> dict[str, Any] | None:
    """The object (with a streaming Body unless head_only), or None when it does not exist."""
    call = client().head_object if head_only else client().get_object
    try:
        return dict(call(Bucket=public_bucket(), Key=key))
    except ClientError as exc:
        if _status(exc) == 404 or _code(exc) in ("NoSuchKey", "NotFound"):
            return None
        raise


def bucket_exists(bucket: str, profile: str = "data") -> bool:
    try:
        client(profile).head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _status(exc) == 404 or _code(exc) in ("NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def ensure_bucket(bucket: str) -> bool:
    """Create the bucket if missing; True when it was created."""
    if bucket_exists(bucket):
        return False
    try:
        client().create_bucket(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False
        raise
    return True


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
