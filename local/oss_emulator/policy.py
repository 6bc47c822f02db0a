"""The PostObject policy document: parse it, then judge expiration, conditions and size.

Shape and errors follow protocol §4: `{"expiration": ISO-8601 UTC, "conditions": [...]}` with
exact-match objects and `eq`, `starts-with`, `in`, `not-in`, `content-length-range` lists.
Conditions see the form values *before* `${filename}` expansion; `$field` names are matched
case-insensitively; a condition on a field the form lacks fails; fields the policy does not
mention are free. `bucket` is the emulated bucket, whatever the form says.

OSS's policy parser accepts `\\$` (a literal `$`), which is not standard JSON; the lexer here
turns it into `$`. The Java SDK writes the same intent as `\\\\$` (JSON for backslash + `$`), so a
backslash before `$` in a decoded value is dropped too (emulator's reading; protocol §4.2).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from local.oss_emulator.errors import OssError, access_denied, policy_document_error

OPERATORS = ("eq", "starts-with", "in", "not-in", "content-length-range")
V4_PINNED_FIELDS = ("x-oss-signature-version", "x-oss-credential", "x-oss-date")
MAX_OBJECT_BYTES = 5 * 1024**3
WRONG_TYPE = "0006-00000224"  # OSS's page: a condition argument of the wrong type

_EXPIRATION = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")
_ESCAPED_DOLLAR = re.compile(r"(?<!\\)((?:\\\\)*)\\\$")  # an unescaped `\$` in the JSON text


@dataclass(frozen=True)
class Condition:
    """One policy condition, normalised: `field` is lower-case and has no `$`."""

    operator: str
    field: str
    value: Any  # str for eq/starts-with, tuple[str, ...] for in/not-in, (min, max) for the range
    shown: str  # how OSS echoes it in "Policy Condition failed: …"


@dataclass(frozen=True)
class Policy:
    expiration: datetime
    conditions: tuple[Condition, ...]

    def length_range(self) -> tuple[int, int]:
        """The size window every `content-length-range` allows together (OSS's own ceiling last)."""
        low, high = 0, MAX_OBJECT_BYTES
        for condition in self.conditions:
            if condition.operator == "content-length-range":
                low = max(low, condition.value[0])
                high = min(high, condition.value[1])
        return low, high


def decode_policy(policy_b64: str) -> Policy:
    """base64 → UTF-8 → JSON (accepting `\\$`) → a checked `Policy`; InvalidPolicyDocument else."""
    try:
        text = base64.b64decode(policy_b64, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise policy_document_error(
            "Invalid Policy: Invalid Base64 Encoded String.", ec="0006-00000201"
        ) from None
    try:
        document = json.loads(_ESCAPED_DOLLAR.sub(r"\1$", text))
    except json.JSONDecodeError as exc:
        raise policy_document_error(f"Invalid Policy: Invalid JSON: {exc.msg}.") from None
    if not isinstance(document, dict):
        raise policy_document_error("Invalid Policy: the policy must be a JSON object.")
    has_expiration, has_conditions = "expiration" in document, "conditions" in document
    if not has_expiration and not has_conditions:
        raise policy_document_error(
            "Invalid Policy: Policy must contain expiration and conditions.", ec="0006-00000209"
        )
    if not has_conditions:
        raise policy_document_error(
            "Invalid Policy: Policy must contain conditions.", ec="0006-00000207"
        )
    if not has_expiration:
        raise policy_document_error(
            "Invalid Policy: Policy must contain expiration.", ec="0006-00000208"
        )
    expiration = _expiration(document["expiration"])
    raw_conditions = document["conditions"]
    if not isinstance(raw_conditions, list) or not raw_conditions:
        raise policy_document_error(
            "Invalid Policy: conditions must be a list with at least one item."
        )
    return Policy(expiration, tuple(_condition(item) for item in raw_conditions))


def _expiration(value: object) -> datetime:
    if not isinstance(value, str):
        raise policy_document_error(
            "Invalid Policy: expiration must be a string.", ec="0006-00000210"
        )
    if value == "":
        raise policy_document_error("Invalid Policy: expiration is empty.", ec="0006-00000211")
    match = _EXPIRATION.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        micros = int((match.group(7) or "0").ljust(6, "0")[:6])
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone.utc)
    except ValueError:
        raise policy_document_error(
            f"Invalid Policy: Invalid 'expiration' value: '{value}'."
        ) from None


def _condition(item: object) -> Condition:
    if isinstance(item, dict):
        return _simple_condition(item)
    if isinstance(item, list):
        return _list_condition(item)
    raise policy_document_error(
        "Invalid Policy: a condition must be a JSON object or array.", ec="0006-00000222"
    )


def _simple_condition(item: dict[str, Any]) -> Condition:
    """`{"field": "value"}`: an exact match, exactly one property."""
    if len(item) != 1:
        raise policy_document_error(
            "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one "
            "property specified."
        )
    ((name, value),) = item.items()
    if not isinstance(value, str) or not name:
        raise policy_document_error(
            f"Invalid Policy: Invalid Simple-Condition: the value of '{name}' must be a string."
        )
    field = name.removeprefix("$").lower()
    return Condition("eq", field, _literal(value), _show(["eq", f"${field}", value]))


def _list_condition(item: list[Any]) -> Condition:
    if not item or not isinstance(item[0], str) or item[0].startswith("$"):
        raise policy_document_error(
            "Invalid Policy: a condition array must start with eq, starts-with, in, not-in or "
            "content-length-range.",
            ec="0006-00000216",
        )
    if item[0].lower() not in OPERATORS:
        # OSS's page for EC 0006-00000217: an operator it does not support
        raise policy_document_error(
            f"Invalid Policy: Unsupported operator: '{item[0]}'.", ec="0006-00000217"
        )
    operator = item[0].lower()
    if len(item) != 3:
        raise policy_document_error(
            f"Invalid Policy: '{operator}' takes exactly two arguments.", ec="0006-00000218"
        )
    if operator == "content-length-range":
        return _length_condition(item)
    name, value = item[1], item[2]
    if not isinstance(name, str) or not name.startswith("$") or len(name) < 2:
        raise policy_document_error(
            f"Invalid Policy: the field of '{operator}' must be a '$name'.", ec=WRONG_TYPE
        )
    field = name[1:].lower()
    if operator in ("in", "not-in"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise policy_document_error(
                f"Invalid Policy: '{operator}' takes a list of strings.", ec=WRONG_TYPE
            )
        return Condition(operator, field, tuple(_literal(v) for v in value), _show(item))
    if not isinstance(value, str):
        raise policy_document_error(
            f"Invalid Policy: '{operator}' takes a string value.", ec=WRONG_TYPE
        )
    return Condition(operator, field, _literal(value), _show(item))


def _length_condition(item: list[Any]) -> Condition:
    low, high = item[1], item[2]
    if any(type(bound) is not int for bound in (low, high)):
        raise policy_document_error(
            "Invalid Policy: content-length-range bounds must be integers.", ec="0006-00000221"
        )
    if low < 0 or high < low:
        raise policy_document_error(
            "Invalid Policy: content-length-range needs 0 <= min <= max.", ec="0006-00000219"
        )
    return Condition("content-length-range", "content-length", (low, high), _show(item))


def _literal(value: str) -> str:
    return value.replace("\\$", "$")


def _show(item: list[Any]) -> str:
    """OSS echoes a failed condition as `["op", "$field", "value"]` (comma and space)."""
    return json.dumps(item, ensure_ascii=False)


def check_expiration(policy: Policy, now: datetime) -> None:
    """Refused once the complete request arrives after `expiration` (EC 0006-00000213)."""
    if now > policy.expiration:
        raise access_denied("Invalid according to Policy: Policy expired.", ec="0006-00000213")


def check_conditions(
    policy: Policy,
    fields: Mapping[str, str],
    *,
    bucket: str,
    version: str,
    strict_v4: bool = True,
) -> None:
    """Every condition must hold against the pre-expansion form values (protocol §4.2)."""
    if version == "v4" and strict_v4:
        pinned = {c.field for c in policy.conditions if c.operator == "eq"}
        for name in V4_PINNED_FIELDS:
            if name not in pinned:
                raise access_denied(
                    f"Invalid according to Policy: a V4 policy must pin {name} "
                    f'(e.g. {{"{name}": "..."}}).',
                    ec="0006-00000227",
                )
    for condition in policy.conditions:
        if condition.operator == "content-length-range":
            continue  # judged with the size, after every other condition
        actual = bucket if condition.field == "bucket" else fields.get(condition.field)
        if actual is None or not _holds(condition, actual):
            raise condition_failed(condition)


def _holds(condition: Condition, actual: str) -> bool:
    if condition.operator == "eq":
        return bool(actual == condition.value)
    if condition.operator == "starts-with":
        return actual.startswith(condition.value)
    if condition.operator == "in":
        return actual in condition.value
    return actual not in condition.value  # not-in


def condition_failed(condition: Condition) -> OssError:
    return access_denied(
        f"Invalid according to Policy: Policy Condition failed: {condition.shown}",
        ec="0006-00000227",
    )


def check_size(policy: Policy | None, size: int) -> None:
    """content-length-range (inclusive) and OSS's 5 GB ceiling (EC 0006-00000003/4)."""
    low, high = policy.length_range() if policy else (0, MAX_OBJECT_BYTES)
    if size > high:
        raise OssError(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size.",
            ec="0006-00000003",
            extra=(("ProposedSize", str(size)), ("MaxSizeAllowed", str(high))),
        )
    if size < low:
        raise OssError(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size.",
            ec="0006-00000004",
            extra=(("ProposedSize", str(size)), ("MinSizeAllowed", str(low))),
        )
