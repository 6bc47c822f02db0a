"""ListObjects (V1 and V2) for the OSS emulator: what oss2 needs to reconcile.

`GET /?list-type=2` (oss2 `list_objects_v2`, `ObjectIteratorV2`) and `GET /` (V1, `list_objects`)
answer OSS's `ListBucketResult` XML: keys in byte order, `prefix`, `delimiter` (CommonPrefixes),
`max-keys` (1–1000, default 100), `encoding-type=url`, V1 `marker`/`NextMarker`, V2
`continuation-token`/`start-after`/`NextContinuationToken`.

The SDK addresses an IP or `localhost` endpoint path-style (`/<bucket>/<key>`), as OSS accepts
there; the emulator serves its bucket at the root. `path_style_key` reads such a path; the app
decides which requests are path-style and authenticates them before anything here runs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from local.oss_emulator.errors import XML_TYPE, OssError, invalid_argument
from local.oss_emulator.store import ObjectStore, StoredObject
from shared.digits import in_range

DEFAULT_MAX_KEYS = 100
MAX_KEYS = 1000


@dataclass(frozen=True)
class ListQuery:
    """The listing parameters, validated as OSS does (InvalidArgument otherwise)."""

    version: int  # 1 or 2
    prefix: str
    delimiter: str
    after: str  # V1 marker, V2 start-after or the decoded continuation token
    max_keys: int
    url_encoded: bool
    fetch_owner: bool


def path_style_key(request: Request, bucket: str) -> str | None:
    """The key of `/<bucket>/<key>` (raw WSGI path as UTF-8); "" for the bucket, None otherwise."""
    raw = str(request.environ.get("PATH_INFO") or "/").encode("latin-1")
    root = b"/" + bucket.encode("ascii")
    if raw == root:
        return ""
    if not raw.startswith(root + b"/"):
        return None
    return object_name(raw[len(root) + 1 :])


def object_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OssError(400, "InvalidObjectName", "The specified object is not valid.") from None


def list_objects(request: Request, store: ObjectStore, *, bucket: str) -> Response:
    """GET / (V1) or GET /?list-type=2 (V2): one page of the bucket's keys, OSS's XML."""
    query = parse_query(request.args)
    objects = sorted(store.all_objects(), key=lambda obj: obj.key.encode("utf-8"))
    page, prefixes, truncated, last = select(objects, query)
    body = list_bucket_result(
        bucket, query, page=page, prefixes=prefixes, truncated=truncated, last=last
    )
    return Response(body, 200, content_type=XML_TYPE)


def parse_query(args: Mapping[str, str]) -> ListQuery:
    """list-type, prefix, delimiter, marker/start-after/continuation-token, max-keys, encoding."""
    list_type = args.get("list-type")
    if list_type not in (None, "2"):
        raise invalid_argument("list-type must be 2.", ArgumentName="list-type")
    version = 2 if list_type == "2" else 1
    max_keys = _max_keys(args.get("max-keys"))
    encoding = args.get("encoding-type") or ""
    if encoding not in ("", "url"):
        raise invalid_argument("encoding-type must be url.", ArgumentName="encoding-type")
    after = args.get("marker", "") if version == 1 else args.get("start-after", "")
    token = args.get("continuation-token") if version == 2 else None
    if token:
        after = max(after, _decode_token(token))
    return ListQuery(
        version=version,
        prefix=args.get("prefix", ""),
        delimiter=args.get("delimiter", ""),
        after=after,
        max_keys=max_keys,
        url_encoded=encoding == "url",
        fetch_owner=(args.get("fetch-owner") or "").lower() == "true",
    )


def _max_keys(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_MAX_KEYS
    value = in_range(text, 1, MAX_KEYS)
    if value is None:
        raise invalid_argument(
            f"max-keys must be an integer between 1 and {MAX_KEYS}.", ArgumentName="max-keys"
        )
    return value


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token, altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise invalid_argument(
            "The continuation token provided is incorrect.", ArgumentName="continuation-token"
        ) from None


def select(
    objects: list[StoredObject], query: ListQuery
) -> tuple[list[StoredObject], list[str], bool, str]:
    """Keys after `after` under `prefix`, folding `delimiter` groups; stop at max-keys."""
    page: list[StoredObject] = []
    prefixes: list[str] = []
    last = ""
    after = query.after.encode("utf-8")
    for obj in objects:
        name = obj.key.encode("utf-8")
        if name <= after or not obj.key.startswith(query.prefix):
            continue
        group = _common_prefix(obj.key, query)
        if group is not None and (prefixes and prefixes[-1] == group):
            continue  # already counted this group
        if len(page) + len(prefixes) == query.max_keys:
            return page, prefixes, True, last
        if group is not None:
            prefixes.append(group)
            last = group + "\U0010ffff"  # resume after every key of the group
        else:
            page.append(obj)
            last = obj.key
    return page, prefixes, False, last


def _common_prefix(key: str, query: ListQuery) -> str | None:
    if not query.delimiter:
        return None
    rest = key[len(query.prefix) :]
    cut = rest.find(query.delimiter)
    return None if cut < 0 else query.prefix + rest[: cut + len(query.delimiter)]


def list_bucket_result(
    bucket: str,
    query: ListQuery,
    *,
    page: list[StoredObject],
    prefixes: list[str],
    truncated: bool,
    last: str,
) -> bytes:
    """OSS's ListBucketResult document (V1: Marker/NextMarker; V2: KeyCount/NextContinuationToken)."""

    def text(value: str) -> str:
        return quote(value, safe="/") if query.url_encoded else value

    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<ListBucketResult>"]
    lines.append(_element("Name", bucket))
    lines.append(_element("Prefix", text(query.prefix)))
    if query.version == 1:
        lines.append(_element("Marker", text(query.after)))
    else:
        lines.append(_element("StartAfter", text(query.after)))
    lines.append(_element("MaxKeys", str(query.max_keys)))
    lines.append(_element("Delimiter", text(query.delimiter)))
    if query.url_encoded:
        lines.append(_element("EncodingType", "url"))
    lines.append(_element("IsTruncated", "true" if truncated else "false"))
    if truncated and query.version == 1:
        lines.append(_element("NextMarker", text(last)))
    if truncated and query.version == 2:
        lines.append(_element("NextContinuationToken", encode_token(last)))
    if query.version == 2:
        lines.append(_element("KeyCount", str(len(page) + len(prefixes))))
    for obj in page:
        lines.append("  <Contents>")
        lines.append(_element("Key", text(obj.key), 4))
        lines.append(_element("LastModified", iso8601(obj.last_modified), 4))
        lines.append(_element("ETag", f'"{obj.etag}"', 4))
        lines.append(_element("Type", obj.object_type, 4))
        lines.append(_element("Size", str(obj.size), 4))
        lines.append(_element("StorageClass", obj.storage_class, 4))
        if query.version == 1 or query.fetch_owner:
            lines.append("    <Owner><ID>1000000000000000</ID>")
            lines.append("      <DisplayName>1000000000000000</DisplayName></Owner>")
        lines.append("  </Contents>")
    for group in prefixes:
        lines.append(f"  <CommonPrefixes>{_element('Prefix', text(group), 0)}</CommonPrefixes>")
    lines.append("</ListBucketResult>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def iso8601(timestamp: float) -> str:
    """OSS lists LastModified as `2020-05-18T05:45:43.000Z`: whole seconds, UTC (oss2 insists)."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _element(name: str, value: str, indent: int = 2) -> str:
    return " " * indent + f"<{name}>{escape(value)}</{name}>"
