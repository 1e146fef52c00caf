"""S3 access from the controller straight to a site: a few bounded calls (boto3, path style,
SigV4, short timeouts)."""

from __future__ import annotations

from typing import Any

from hapair.components.storage.backlog import ObjectInfo, index
from hapair.components.storage.probe import parse_list_page
from hapair.components.storage.site import Site
from hapair.errors import Unhealthy
from hapair.workflows.storage.setup import StorageSetup


class S3Api:
    """A few bounded S3 calls against one site."""

    def __init__(self, site: Site, setup: StorageSetup) -> None:
        import boto3  # the controller needs it only for storage checks
        from botocore.config import Config

        access, secret = setup.credentials.pair()
        self.site = site
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=site.url, aws_access_key_id=access,
            aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(
                connect_timeout=setup.connect_timeout_s, read_timeout=setup.read_timeout_s,
                retries={"total_max_attempts": 2, "mode": "standard"},
                signature_version="s3v4", s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=body)

    def get(self, bucket: str, key: str) -> bytes | None:
        try:
            return bytes(self._client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self._client.exceptions.ClientError as exc:
            if status_of(exc) == 404:
                return None
            raise

    def delete(self, bucket: str, key: str) -> None:
        self._client.delete_object(Bucket=bucket, Key=key)

    def list(self, bucket: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out += parse_list_page(bucket, page)
        return out

    def ensure_bucket(self, bucket: str) -> bool:
        try:
            self._client.head_bucket(Bucket=bucket)
            return False
        except self._client.exceptions.ClientError as exc:
            if status_of(exc) != 404:
                raise
        self._client.create_bucket(Bucket=bucket)
        return True


def status_of(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def listing(setup: StorageSetup, site: Site) -> dict[tuple[str, str], ObjectInfo]:
    api = S3Api(site, setup)
    try:
        return index(o for b in setup.buckets for o in api.list(b))
    except Exception as exc:  # noqa: BLE001 - boto/botocore errors of any kind
        raise Unhealthy(f"{site.name}: cannot list {site.url}: {exc}") from None


def ensure_buckets(setup: StorageSetup, site: Site) -> list[str]:
    """Create the inventory's buckets where missing; the names created."""
    api = S3Api(site, setup)
    return [b for b in setup.buckets if api.ensure_bucket(b)]
