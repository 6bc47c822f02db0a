"""Upload callbacks as OSS makes them (protocol §5–§7).

The `callback` form field is base64 JSON (`callbackUrl`, `callbackBody`, `callbackBodyType`,
`callbackHost`, `callbackSNI`). The body template is rendered (form mode: values percent-encoded,
RFC 3986 unreserved kept; JSON mode: strings as JSON strings, numbers raw), then POSTed to each URL
in turn with OSS's headers and an RSA-MD5 signature over `decoded path [+ ? + raw query] + LF +
body`. Only 200 + Content-Length + a JSON (or application/xml) body of at most 1 MB counts as
success; there is no retry and the whole attempt gets 5 s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import quote, unquote_to_bytes, urlsplit

import requests
import urllib3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from local.oss_emulator.errors import OssError
from shared.digits import in_range

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
BODY_TYPES = (FORM_TYPE, JSON_TYPE)
MAX_URLS = 5
TIMEOUT_SECONDS = 5.0
MAX_REPLY_BYTES = 1024 * 1024
USER_AGENT = "aliyun-oss-callback"

SYSTEM_VARIABLES = (
    "bucket",
    "object",
    "etag",
    "size",
    "mimeType",
    "imageInfo.height",
    "imageInfo.width",
    "imageInfo.format",
    "crc64",
    "contentMd5",
    "vpcId",
    "clientIp",
    "reqId",
    "operation",
)
NUMERIC_VARIABLES = frozenset(["size", "crc64", "imageInfo.height", "imageInfo.width"])
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_CUSTOM = re.compile(r"x:[a-z0-9_]+")


@dataclass(frozen=True)
class CallbackConfig:
    urls: tuple[str, ...]
    body: str
    body_type: str
    host: str | None = None
    sni: bool = False


@dataclass(frozen=True)
class CallbackRequest:
    """What OSS sends: the URL, headers in order, and the exact body bytes."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class CallbackReply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    complete: bool = True  # False when the body went past MAX_REPLY_BYTES


class CallbackUnreachable(Exception):
    """The app server could not be reached or did not answer in time; the text is OSS's."""


Sender = Callable[[CallbackRequest, float], CallbackReply]


@dataclass(frozen=True)
class CallbackOutcome:
    ok: bool
    reply: CallbackReply | None = None
    failure: str = ""  # OSS's CallbackFailed message
    attempts: list[CallbackRequest] = field(default_factory=list)


def invalid_callback(message: str, value: str) -> OssError:
    return OssError(
        400,
        "InvalidArgument",
        message,
        ec="0007-00000004",
        extra=(("ArgumentName", "callback"), ("ArgumentValue", value)),
    )


def parse_callback(field_value: str) -> CallbackConfig:
    """Decode and validate the `callback` field; InvalidArgument before anything is stored."""
    try:
        text = base64.b64decode(field_value, validate=True).decode("utf-8")
        config = json.loads(text)
    except (binascii.Error, ValueError):
        raise invalid_callback(
            "The callback configuration is not json format.", field_value
        ) from None
    if not isinstance(config, dict):
        raise invalid_callback("The callback configuration is not json format.", text)
    urls = _callback_urls(config.get("callbackUrl"), text)
    body = config.get("callbackBody")
    if not isinstance(body, str) or not body:
        raise invalid_callback("The callbackBody is empty.", text)
    body_type = config.get("callbackBodyType", FORM_TYPE)
    if not isinstance(body_type, str) or body_type.lower() not in BODY_TYPES:
        raise invalid_callback(
            "The callbackBodyType must be application/x-www-form-urlencoded or application/json.",
            text,
        )
    host = config.get("callbackHost")
    if host is not None and (not isinstance(host, str) or not _valid_host(host)):
        raise invalid_callback("The callbackHost is not valid.", text)
    sni = config.get("callbackSNI", False)
    if not isinstance(sni, bool):
        raise invalid_callback("The callbackSNI must be true or false.", text)
    for name in _PLACEHOLDER.findall(body):
        if name not in SYSTEM_VARIABLES and not _CUSTOM.fullmatch(name):
            raise invalid_callback(
                f"The callbackBody variable '${{{name}}}' is neither a system variable nor a "
                "lower-case custom variable (x:name).",
                text,
            )
    return CallbackConfig(urls, body, body_type.lower(), host or None, sni)


def _callback_urls(value: object, text: str) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip():
        raise invalid_callback("The callbackUrl is empty.", text)
    urls = []
    for raw in value.split(";"):
        url = raw.strip()
        if not url:
            continue
        if "://" not in url:
            url = "http://" + url  # OSS accepts a URL without a scheme
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise invalid_callback(f"The callbackUrl '{raw}' is not valid.", text) from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or "[" in parts.netloc
            or port == 0
            or any(ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in url)
        ):
            raise invalid_callback(f"The callbackUrl '{raw}' is not valid.", text)
        urls.append(url)
    if not urls or len(urls) > MAX_URLS:
        raise invalid_callback(f"The callbackUrl must hold 1 to {MAX_URLS} URLs.", text)
    return tuple(urls)


def _valid_host(host: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", host))


def render_body(
    config: CallbackConfig, variables: Mapping[str, str], custom: Mapping[str, str]
) -> bytes:
    """Fill `${var}` in the template; constants are copied verbatim (protocol §5.5)."""
    json_mode = config.body_type == JSON_TYPE
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(config.body):
        out.append(config.body[position : match.start()])
        position = match.end()
        name = match.group(1)
        value = custom.get(name, "") if name.startswith("x:") else variables.get(name, "")
        if not json_mode:
            out.append(quote(value, safe=""))  # keeps A-Za-z0-9-._~, %XX for other UTF-8 bytes
        elif name in NUMERIC_VARIABLES:
            # Numbers go in raw, inside a string too; an empty one is null outside a string.
            out.append(value or ("" if _inside_json_string(config.body, match.start()) else "null"))
        else:
            out.append(json.dumps(value, ensure_ascii=False))
    out.append(config.body[position:])
    return "".join(out).encode("utf-8")


def _inside_json_string(template: str, index: int) -> bool:
    """Whether `index` of a JSON template lies inside a string literal (quotes, escapes)."""
    inside = escaped = False
    for ch in template[:index]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = inside
        elif ch == '"':
            inside = not inside
    return inside


def string_to_verify(url: str, body: bytes) -> bytes:
    """decoded path + ("?" + raw query, only when there is one) + LF + body (protocol §6.2)."""
    parts = urlsplit(url)
    signed = unquote_to_bytes(parts.path or "/")
    if parts.query:
        signed += b"?" + parts.query.encode("ascii")
    return signed + b"\n" + body


def sign(private_key: rsa.RSAPrivateKey, data: bytes) -> str:
    """OSS's Authorization value: base64 RSA PKCS#1 v1.5 over MD5 (OSS's choice of digest)."""
    signature = private_key.sign(data, padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    return base64.b64encode(signature).decode("ascii")


def build_request(
    url: str,
    config: CallbackConfig,
    body: bytes,
    *,
    private_key: rsa.RSAPrivateKey,
    key_url: str,
    bucket: str,
    request_id: str,
    owner: str,
) -> CallbackRequest:
    """The request OSS sends for one callback URL, with the headers of protocol §6.1."""
    parts = urlsplit(url)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324 - OSS's
    headers = (
        ("Host", config.host or parts.netloc),
        ("Content-Type", config.body_type),
        ("Content-Length", str(len(body))),
        ("Content-MD5", md5),
        ("Date", formatdate(usegmt=True)),
        ("User-Agent", USER_AGENT),
        ("Authorization", sign(private_key, string_to_verify(url, body))),
        ("x-oss-pub-key-url", base64.b64encode(key_url.encode()).decode("ascii")),
        ("x-oss-bucket", bucket),
        ("x-oss-request-id", request_id),
        ("x-oss-requester", owner),
        ("x-oss-owner", owner),
        ("x-oss-signature-version", "1.0"),
        ("x-oss-tag", "CALLBACK"),
        ("Connection", "close"),
    )
    return CallbackRequest(url, headers, body)


def send_with_requests(request: CallbackRequest, timeout: float) -> CallbackReply:
    """POST with `requests`: no redirects, no proxies from the environment, a hard deadline."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(request.url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.post(
                request.url,
                data=request.body,
                # OSS sends no Accept/Accept-Encoding: ask for the body as the app server writes it
                headers={**dict(request.headers), "Accept": None, "Accept-Encoding": None},
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise _timed_out(where, timeout) from None
        except requests.RequestException:
            raise CallbackUnreachable(
                "Error status : -1. OSS can not connect to your callbackUrl, please check it."
            ) from None
        with response:
            body = bytearray()
            complete = True
            try:
                for chunk in response.raw.stream(64 * 1024, decode_content=False):
                    body.extend(chunk)
                    if len(body) > MAX_REPLY_BYTES:
                        complete = False
                        break
                    if time.monotonic() > deadline:
                        raise _timed_out(where, timeout)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError):
                raise _timed_out(where, timeout) from None
            headers = {k.lower(): v for k, v in response.headers.items()}
            return CallbackReply(response.status_code, headers, bytes(body), complete)


def _timed_out(where: str, timeout: float) -> CallbackUnreachable:
    ms = int(timeout * 1000)
    return CallbackUnreachable(
        f"error status:-1 {where} reply timeout, cost: {ms} MS, timeout: {ms} MS"
    )


def judge_reply(reply: CallbackReply) -> str:
    """ "" when OSS accepts the app server's answer, else OSS's CallbackFailed message (§6.5, §7)."""
    if reply.status != 200:
        return f"Error status : {reply.status}."
    length = in_range(reply.headers.get("content-length"), 0, MAX_REPLY_BYTES)
    if length is None or not reply.complete:
        return f"Error Status : {reply.status}.User server return too long content-length value"
    content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/xml":
        return ""
    try:
        json.loads(reply.body.decode("utf-8"))  # a BOM makes this fail, as it does at OSS
    except ValueError:
        return "Response body is not valid json format."
    return ""


def run_callback(
    config: CallbackConfig,
    make_request: Callable[[str], CallbackRequest],
    send: Sender,
    *,
    timeout: float = TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> CallbackOutcome:
    """Try each callbackUrl in order until one succeeds; 5 s in all, no retry of a URL."""
    deadline = clock() + timeout
    attempts: list[CallbackRequest] = []
    failure = ""
    for url in config.urls:
        remaining = deadline - clock()
        if remaining <= 0:
            failure = "Cost too long time"
            break
        request = make_request(url)
        attempts.append(request)
        try:
            reply = send(request, remaining)
        except CallbackUnreachable as exc:
            failure = str(exc)
            continue
        failure = judge_reply(reply)
        if not failure:
            return CallbackOutcome(True, reply, "", attempts)
    return CallbackOutcome(False, None, failure, attempts)
