"""The file store in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2 and the like), so that API
processes and workers on different machines share batch uploads, batch logs and export files.

boto3 is the client: it signs the presigned PUT with the `Content-MD5` header among its signed headers
(so the bucket itself refuses bytes that are not the allocated file, as Sitecore's upload links do),
takes credentials from the standard AWS chain, and is what the S3-protocol test server speaks.

Nothing is held whole: a writer sends parts of `PART_BYTES` as they fill (one PUT when the file is
smaller than a part), a reader is the object's body read as a stream.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PART_BYTES = 8 * 1024 * 1024  # S3 wants parts of at least 5 MiB, but the last
_MISSING = ("404", "NoSuchKey", "NotFound")


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


class S3Files:
    """Objects under `s3://bucket/prefix/`, addressed by the same keys as the local store's files."""

    takes_direct_uploads = True

    def __init__(self, url: str, endpoint_url: str | None = None, region: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"})
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def _key(self, key: str) -> str:
        return self.prefix + key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Write an object whole or not at all: it exists only once the block has succeeded."""
        out = _PartWriter(self.client, self.bucket, self._key(key))
        try:
            yield out  # type: ignore[misc]
            out.finish()
        except BaseException:
            out.abort()
            raise

    @contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(key) from None
            raise
        with closing(body):
            yield body

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self._key(key)))
        except ClientError as error:
            if _missing(error):
                return None
            raise

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def md5(self, key: str) -> str | None:
        """The MD5 of an object sent in one PUT (its ETag), as the presigned upload sends it."""
        head = self._head(key)
        etag = str(head["ETag"]).strip('"') if head else ""
        return etag if len(etag) == 32 else None

    def rename(self, source: str, target: str) -> None:
        self.client.copy({"Bucket": self.bucket, "Key": self._key(source)}, self.bucket, self._key(target))
        self.delete(source)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def download_url(self, key: str, expires_in: int, filename: str) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key),
                  "ResponseContentDisposition": f'attachment; filename="{filename}"'}  # fmt: skip
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def upload_url(self, key: str, md5_base64: str, expires_in: int) -> str | None:
        """A presigned PUT that only the allocated bytes pass: `Content-MD5` is one of its signed headers."""
        params = {"Bucket": self.bucket, "Key": self._key(key), "ContentMD5": md5_base64}
        return str(self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in))


class _PartWriter(io.RawIOBase):
    """A file-like object that sends what is written as the parts of a multipart upload."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self.client, self.bucket, self.key = client, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        while len(self.buffer) >= PART_BYTES:
            self._send(bytes(self.buffer[:PART_BYTES]))
            del self.buffer[:PART_BYTES]
        return len(data)

    def _send(self, part: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                         PartNumber=number, Body=part)  # fmt: skip
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def finish(self) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
        else:
            if self.buffer:
                self._send(bytes(self.buffer))
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                                  MultipartUpload={"Parts": self.parts})  # fmt: skip
        self.buffer = bytearray()

    def abort(self) -> None:
        if self.upload_id is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        self.buffer = bytearray()
