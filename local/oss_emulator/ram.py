"""RAM policies for the emulator: an access key bound to a policy document may do only what it allows.

The documents are `deploy/ram/*.json`, the same files the deployment attaches to the functions'
roles, with their placeholders filled in as docs/deploy.md says (`local/dev_config.py` does it).
Evaluation follows OSS's authorization reference ("OSS authorization syntax and elements",
https://www.alibabacloud.com/help/en/oss/user-guide/authorization-syntax-and-elements): an
explicit Deny wins, else any matching Allow, else the request is denied. `Action` and `Resource`
take `*` and `?` wildcards (actions case-insensitively); every condition of a statement must hold,
any of a condition's values may match. The string operators are evaluated; a document using any
other operator is refused when it is loaded (the emulator does not guess). A condition on a key
the request does not carry does not hold (emulator's reading).

Which actions an operation needs (same reference, "Object level"): PostObject and PutObject
`oss:PutObject`; GetObject and HeadObject `oss:GetObject`; ListObjects `oss:ListObjects` on the
bucket, with `oss:Prefix` and `oss:Delimiter` as condition keys. A write that sets the ACL
(`x-oss-object-acl`) also needs `oss:PutObjectAcl` — setting it on a write has "the same effect
as PutObjectACL" (PutObjectACL, https://help.aliyun.com/en/oss/developer-reference/putobjectacl);
`x-oss-tagging` also needs `oss:PutObjectTagging`, and `x-oss-server-side-encryption: KMS`
`kms:GenerateDataKey` (PutObject's permission table,
https://help.aliyun.com/en/oss/developer-reference/put-object).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.oss_emulator.errors import access_denied

if TYPE_CHECKING:
    from local.oss_emulator.config import EmulatorConfig

STRING_OPERATORS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)


class PolicyDocumentError(ValueError):
    """A RAM policy document the emulator cannot read or evaluate."""


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # lower case
    values: tuple[str, ...]

    def holds(self, context: Mapping[str, str]) -> bool:
        actual = context.get(self.key)
        if actual is None:
            return False
        negated = "Not" in self.operator
        base = self.operator.replace("Not", "")
        if base == "StringLike":
            matched = any(_wildcard(value).fullmatch(actual) for value in self.values)
        elif base == "StringEqualsIgnoreCase":
            matched = actual.lower() in (value.lower() for value in self.values)
        else:
            matched = actual in self.values
        return matched is not negated


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        return (
            any(_wildcard(pattern, fold=True).fullmatch(action) for pattern in self.actions)
            and any(_wildcard(pattern).fullmatch(resource) for pattern in self.resources)
            and all(condition.holds(context) for condition in self.conditions)
        )


@dataclass(frozen=True)
class RamPolicy:
    statements: tuple[Statement, ...]

    def allows(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Explicit Deny > Allow > implicit deny."""
        lowered = {name.lower(): value for name, value in context.items()}
        matching = [s for s in self.statements if s.applies(action, resource, lowered)]
        if any(s.effect == "Deny" for s in matching):
            return False
        return any(s.effect == "Allow" for s in matching)

    @classmethod
    def load(cls, path: Path, substitutions: Mapping[str, str]) -> RamPolicy:
        """Read a `deploy/ram/*.json` document, replacing each placeholder (`<bucket>`, …)."""
        text = path.read_text(encoding="utf-8")
        for placeholder, value in substitutions.items():
            text = text.replace(placeholder, value)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyDocumentError(f"{path}: not JSON: {exc.msg}") from None
        return cls.parse(document)

    @classmethod
    def parse(cls, document: Any) -> RamPolicy:
        if not isinstance(document, dict) or str(document.get("Version")) != "1":
            raise PolicyDocumentError('a RAM policy is an object with "Version": "1"')
        raw = document.get("Statement")
        if not isinstance(raw, list) or not raw:
            raise PolicyDocumentError("Statement must be a non-empty list")
        return cls(tuple(_statement(item) for item in raw))


def _statement(item: Any) -> Statement:
    if not isinstance(item, dict):
        raise PolicyDocumentError("each Statement is an object")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyDocumentError("Effect must be Allow or Deny")
    conditions: list[Condition] = []
    raw_conditions = item.get("Condition", {})
    if not isinstance(raw_conditions, dict):
        raise PolicyDocumentError("Condition must be an object")
    for operator, keys in raw_conditions.items():
        if operator not in STRING_OPERATORS:
            raise PolicyDocumentError(f"condition operator {operator!r} is not emulated")
        if not isinstance(keys, dict):
            raise PolicyDocumentError(f"{operator} must map condition keys to values")
        for key, values in keys.items():
            conditions.append(Condition(operator, key.lower(), _strings(values, key)))
    return Statement(
        effect=effect,
        actions=_strings(item.get("Action"), "Action"),
        resources=_strings(item.get("Resource", "*"), "Resource"),
        conditions=tuple(conditions),
    )


def _strings(value: Any, name: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise PolicyDocumentError(f"{name} must be a string or a list of strings")
    return tuple(values)


def _wildcard(pattern: str, *, fold: bool = False) -> re.Pattern[str]:
    """`*` any run of characters, `?` one character; everything else literal."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.S | (re.I if fold else 0))


# --- what an operation needs ----------------------------------------------------------------


def bucket_resource(region: str, account_id: str, bucket: str) -> str:
    return f"acs:oss:{region}:{account_id}:{bucket}"


def object_resource(region: str, account_id: str, bucket: str, key: str) -> str:
    return f"{bucket_resource(region, account_id, bucket)}/{key}"


def write_actions(fields: Mapping[str, str]) -> tuple[str, ...]:
    """The actions a write (PostObject, PutObject, …) with these fields or headers needs."""
    actions = ["oss:PutObject"]
    if "x-oss-object-acl" in fields:
        actions.append("oss:PutObjectAcl")
    if "x-oss-tagging" in fields:
        actions.append("oss:PutObjectTagging")
    if (fields.get("x-oss-server-side-encryption") or "").upper() == "KMS":
        actions.append("kms:GenerateDataKey")
    return tuple(actions)


def authorize(
    config: EmulatorConfig,
    key_id: str,
    actions: Iterable[str],
    key: str | None,
    context: Mapping[str, str],
) -> None:
    """403 AccessDenied unless the key's policy allows every action on the object `key` (the
    bucket when None; KMS actions on the account's keys); a key without a policy is the owner's."""
    policy = config.policies.get(key_id)
    if policy is None:
        return
    place = (config.region, config.owner_id, config.bucket)
    target = bucket_resource(*place) if key is None else object_resource(*place, key)
    facts = {"acs:AccessId": key_id, **context}
    for action in actions:
        kms = f"acs:kms:{config.region}:{config.owner_id}:key/*"
        resource = target if action.startswith("oss:") else kms
        if not policy.allows(action, resource, facts):
            raise access_denied(
                f"You are not allowed to do {action} on {resource} (RAM policy of {key_id})."
            )
