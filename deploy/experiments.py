"""The experiments `make probe` runs (docs/probe.md): each asks OSS one question its documentation
leaves open and returns what was observed, as text, for a real bucket and the emulator alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import oss2
import requests

from local.oss_emulator.signature import v4_signature

HTTP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Target:
    """Where experiments run: a real bucket, or the emulator."""

    name: str
    post_url: str  # where a browser POSTs the form (the bucket's own host)
    sdk_endpoint: str  # what oss2 is given
    bucket: str
    region: str
    key_id: str
    secret: str = field(repr=False)
    token: str = field(default="", repr=False)
    origin: str = ""
    prefix: str = "probe/"

    def sdk(self, region: str | None = None) -> oss2.Bucket:
        auth = (
            oss2.StsAuth(self.key_id, self.secret, self.token, auth_version="v4")
            if self.token
            else oss2.auth.AuthV4(self.key_id, self.secret)
        )
        return oss2.Bucket(auth, self.sdk_endpoint, self.bucket, region=region or self.region)


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    run: Callable[[Target, requests.Session], str]  # returns what was observed, as text


# --- building requests ----------------------------------------------------------------------


def post_form(
    target: Target,
    session: requests.Session,
    key: str,
    *,
    signed_at: datetime | None = None,
    conditions: Sequence[Any] = (),
    fields: Mapping[str, str] | None = None,
    file_type: str = "text/plain",
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """A V4 PostObject as the sign function builds it, with optional extra conditions/fields."""
    when = signed_at or datetime.now(timezone.utc)
    date = when.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{target.key_id}/{date[:8]}/{target.region}/oss/aliyun_v4_request"
    pinned: list[Any] = [
        {"bucket": target.bucket},
        {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
        {"x-oss-credential": credential},
        {"x-oss-date": date},
        ["eq", "$key", key],
    ]
    if target.token:
        pinned.append({"x-oss-security-token": target.token})
    expiration = datetime.now(timezone.utc) + timedelta(minutes=10)
    document = {
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": pinned + list(conditions),
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    form = {
        "key": key,
        "policy": policy,
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": credential,
        "x-oss-date": date,
        "x-oss-signature": v4_signature(target.secret, date[:8], target.region, policy),
        **({"x-oss-security-token": target.token} if target.token else {}),
        **(fields or {}),
    }
    parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in form.items()]
    parts.append(("file", ("probe.txt", b"hello", file_type)))
    return session.post(target.post_url, files=parts, headers=headers, timeout=HTTP_TIMEOUT)


def outcome(response: requests.Response) -> str:
    """`<status> <Code>` of an answer (the Code of an OSS error document, if any)."""
    code = ""
    if response.content.startswith(b"<?xml"):
        try:
            code = ET.fromstring(response.content).findtext("Code") or ""  # noqa: S314
        except ET.ParseError:
            code = "?"
    return f"{response.status_code} {code}".strip()


def sdk_outcome(call: Callable[[], Any]) -> str:
    try:
        result = call()
    except oss2.exceptions.OssError as error:
        return f"{error.status} {error.code}".strip()
    return str(getattr(result, "status", "ok"))


def new_key(target: Target) -> str:
    return f"{target.prefix}{secrets.token_hex(8)}.txt"


# --- the experiments (docs/probe.md) --------------------------------------------------------


def v4_date_a_day_old(target: Target, session: requests.Session) -> str:
    day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    return outcome(post_form(target, session, new_key(target), signed_at=day_ago))


def v4_date_ahead(target: Target, session: requests.Session) -> str:
    ahead = datetime.now(timezone.utc) + timedelta(minutes=20)
    return outcome(post_form(target, session, new_key(target), signed_at=ahead))


def content_type_condition(target: Target, session: requests.Session) -> str:
    key = new_key(target)
    answer = post_form(
        target,
        session,
        key,
        conditions=[["eq", "$content-type", "text/plain"]],
        fields={"Content-Type": "text/plain"},
        file_type="image/png",
    )
    stored = target.sdk().head_object(key).content_type if answer.ok else "-"
    return f"{outcome(answer)}; stored {stored}"


def cors_on_errors(target: Target, session: requests.Session) -> str:
    form = {"x-oss-signature": "0" * 64}  # a wrong signature: 403
    answer = post_form(
        target, session, new_key(target), fields=form, headers={"Origin": target.origin}
    )
    allowed = answer.headers.get("Access-Control-Allow-Origin", "-")
    return f"{outcome(answer)}; Access-Control-Allow-Origin {allowed}"


def control_characters(target: Target, session: requests.Session) -> str:
    fields = {"Content-Disposition": "inline\r\nX-Probe: 1"}
    return outcome(post_form(target, session, new_key(target), fields=fields))


def unsatisfiable_range(target: Target, session: requests.Session) -> str:
    key = new_key(target)
    post_form(target, session, key)
    return sdk_outcome(lambda: target.sdk().get_object(key, byte_range=(10, 20)))


def wrong_v4_region(target: Target, session: requests.Session) -> str:
    other = "cn-shanghai" if target.region != "cn-shanghai" else "cn-beijing"
    return sdk_outcome(lambda: target.sdk(other).list_objects_v2(prefix=target.prefix))


def multipart_etag(target: Target, session: requests.Session) -> str:
    """Is a multipart object's ETag `<MD5 of the parts' binary MD5s>-<count>`, as S3 forms it?"""
    del session
    sdk, key = target.sdk(), new_key(target)
    chunks = [b"a" * 102_400, b"b"]
    upload_id = sdk.init_multipart_upload(key).upload_id
    parts = [
        oss2.models.PartInfo(number, sdk.upload_part(key, upload_id, number, chunk).etag)
        for number, chunk in enumerate(chunks, 1)
    ]
    etag = sdk.complete_multipart_upload(key, upload_id, parts).etag
    joined = b"".join(hashlib.md5(chunk).digest() for chunk in chunks)  # noqa: S324 - OSS's
    expected = f"{hashlib.md5(joined).hexdigest().upper()}-{len(chunks)}"  # noqa: S324
    return "md5-of-md5s-count" if etag == expected else f"other form ({len(etag)} chars)"


def part_md5_mismatch(target: Target, session: requests.Session) -> str:
    """Which code does an UploadPart whose Content-MD5 does not match its bytes get?"""
    del session
    sdk, key = target.sdk(), new_key(target)
    upload_id = sdk.init_multipart_upload(key).upload_id
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()  # noqa: S324
    try:
        return sdk_outcome(
            lambda: sdk.upload_part(key, upload_id, 1, b"part", headers={"Content-MD5": wrong})
        )
    finally:
        sdk.abort_multipart_upload(key, upload_id)


EXPERIMENTS = (
    Experiment(
        "v4-date-past",
        "Is a V4 PostObject signed a day ago (policy still valid) accepted?",
        v4_date_a_day_old,
    ),
    Experiment(
        "v4-date-ahead",
        "Is a V4 PostObject whose x-oss-date is 20 minutes ahead refused?",
        v4_date_ahead,
    ),
    Experiment(
        "content-type-condition",
        "Which value does a $content-type condition see, and which type is stored?",
        content_type_condition,
    ),
    Experiment("cors-on-errors", "Do 4xx PostObject answers carry CORS headers?", cors_on_errors),
    Experiment(
        "control-characters",
        "Is a CR/LF in Content-Disposition refused, and how?",
        control_characters,
    ),
    Experiment(
        "unsatisfiable-range",
        "What does GetObject answer to a range past the end?",
        unsatisfiable_range,
    ),
    Experiment(
        "wrong-v4-region", "What does a V4 header signed for another region get?", wrong_v4_region
    ),
    Experiment(
        "multipart-etag", "Is a multipart ETag MD5(part MD5s)-count, as S3's?", multipart_etag
    ),
    Experiment(
        "part-md5-mismatch",
        "Which code does an UploadPart with a wrong Content-MD5 get?",
        part_md5_mismatch,
    ),
)
