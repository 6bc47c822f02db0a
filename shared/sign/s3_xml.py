"""S3's XML answers on `/s3/op`, as Uppy's `@uppy/aws-s3` reads them.

`Content-Type: application/xml`, which the plugin requires to read an error's `Code`: errors as
`<Error><Code>…</Code><Message>…</Message></Error>` with our stable codes and statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from shared.errors import AppError
from shared.http import Response

XML_TYPE = "application/xml"


def xml_response(
    status: int, root: str, children: Sequence[tuple[str, str]] = (), *, extra: str = ""
) -> Response:
    """`<?xml…?><root><name>text</name>…extra</root>` with S3's content type."""
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in children) + extra
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()
    return Response(status, body, [("Content-Type", XML_TYPE)])


def xml_error(error: AppError) -> Response:
    """An error as S3 writes it; the plugin reads `Code` when the type is application/xml."""
    response = xml_response(
        error.status, "Error", [("Code", error.code), ("Message", error.message)]
    )
    response.headers.extend(error.headers)
    response.outcome = error.code
    response.log_fields["reason"] = error.message
    return response


def initiate_result(bucket: str, key: str, upload_id: str) -> Response:
    return xml_response(
        200,
        "InitiateMultipartUploadResult",
        [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)],
    )


def list_parts_result(bucket: str, status: Mapping[str, Any]) -> Response:
    parts = "".join(
        f"<Part><PartNumber>{int(part['partNumber'])}</PartNumber>"
        f"<ETag>{escape(_quoted(str(part['etag'])))}</ETag><Size>{int(part['size'])}</Size></Part>"
        for part in status.get("parts", [])
    )
    children = [
        ("Bucket", bucket),
        ("Key", str(status["key"])),
        ("UploadId", str(status["uploadId"])),
        ("IsTruncated", "false"),
    ]
    return xml_response(200, "ListPartsResult", children, extra=parts)


def complete_result(location: str, bucket: str, key: str, etag: str) -> Response:
    children = [("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", _quoted(etag))]
    return xml_response(200, "CompleteMultipartUploadResult", children)


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


class UploadRejected(AppError):
    """Complete ran, and the callback rejected the object (deleted, not recorded): the XML face of
    the callback's `{"Status": "Rejected", "code", "message"}`, so that Uppy shows an error."""

    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
