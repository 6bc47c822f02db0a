"""OSS's XML error replies: one exception carrying HTTP status, Code, Message and extra elements."""

from __future__ import annotations

from xml.sax.saxutils import escape

XML_TYPE = "application/xml"


class OssError(Exception):
    """An error OSS answers as `<Error><Code/><Message/><RequestId/><HostId/>…</Error>`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        ec: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.extra = extra


def error_xml(error: OssError, *, request_id: str, host_id: str) -> bytes:
    """The body of an OSS error reply (protocol §2.5: Code, Message, RequestId, HostId, [EC])."""
    elements: list[Element] = [
        ("Code", error.code),
        ("Message", error.message),
        ("RequestId", request_id),
        ("HostId", host_id),
        *error.extra,
    ]
    if error.ec:
        elements.append(("EC", error.ec))
    return xml_document("Error", elements)


Element = tuple[str, "str | list[Element]"]  # text, or child elements


def xml_document(root: str, elements: list[Element]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{root}>"]
    _render(elements, lines, "  ")
    lines.append(f"</{root}>")
    return ("\n".join(lines) + "\n").encode()


def _render(elements: list[Element], lines: list[str], indent: str) -> None:
    for name, value in elements:
        if isinstance(value, str):
            lines.append(f"{indent}<{name}>{escape(value)}</{name}>")
        else:
            lines.append(f"{indent}<{name}>")
            _render(value, lines, indent + "  ")
            lines.append(f"{indent}</{name}>")


def invalid_argument(message: str, *, ec: str | None = None, **extra: str) -> OssError:
    return OssError(400, "InvalidArgument", message, ec=ec, extra=tuple(extra.items()))


def access_denied(message: str, *, ec: str | None = None) -> OssError:
    return OssError(403, "AccessDenied", message, ec=ec)


def policy_document_error(message: str, *, ec: str | None = None) -> OssError:
    return OssError(400, "InvalidPolicyDocument", message, ec=ec)
