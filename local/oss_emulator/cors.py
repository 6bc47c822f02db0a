"""The bucket's CORS rules, read from the PutBucketCors document we deploy (`deploy/oss/cors.xml`).

Matching follows OSS (oss-protocol.md §11): the first rule whose `AllowedOrigin`, `AllowedMethod`
(or the preflight's `Access-Control-Request-Method`) and every `Access-Control-Request-Headers`
entry match; `AllowedOrigin` and `AllowedHeader` take one `*` wildcard, headers match
case-insensitively. No match: no CORS headers on a normal request, `403 AccessForbidden` on a
preflight. With `ResponseVary` on, every answer carries `Vary: Origin`.

The deployed file names the production app's origin; the emulator replaces the origins of every
rule with the local stack's (`CORS_ALLOWED_ORIGINS`), keeping everything else as deployed, so the
browser tests prove the methods and headers we deploy.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from local.oss_emulator.errors import OssError

DEPLOYED = Path(__file__).resolve().parents[2] / "deploy" / "oss" / "cors.xml"


@dataclass(frozen=True)
class CorsRule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]  # lower case
    expose: tuple[str, ...]
    max_age: int | None

    def matches(self, origin: str, method: str, requested: Iterable[str] = ()) -> bool:
        return (
            any(_pattern(o).fullmatch(origin) for o in self.origins)
            and method.upper() in self.methods
            and all(any(_pattern(h).fullmatch(name) for h in self.headers) for name in requested)
        )


@dataclass(frozen=True)
class CorsConfiguration:
    rules: tuple[CorsRule, ...]
    vary: bool

    @classmethod
    def load(
        cls, path: Path = DEPLOYED, *, origins: Iterable[str] | None = None
    ) -> CorsConfiguration:
        """Parse a CORSConfiguration document; `origins` replaces every rule's AllowedOrigin."""
        root = ET.fromstring(path.read_bytes())  # noqa: S314 - our own deploy file
        rules = []
        for node in root.findall("CORSRule"):
            age = node.findtext("MaxAgeSeconds")
            rules.append(
                CorsRule(
                    origins=tuple(e.text or "" for e in node.findall("AllowedOrigin")),
                    methods=tuple((e.text or "").upper() for e in node.findall("AllowedMethod")),
                    headers=tuple((e.text or "").lower() for e in node.findall("AllowedHeader")),
                    expose=tuple(e.text or "" for e in node.findall("ExposeHeader")),
                    max_age=int(age) if age else None,
                )
            )
        if origins is not None:
            rules = [replace(rule, origins=tuple(sorted(origins))) for rule in rules]
        vary = (root.findtext("ResponseVary") or "").strip().lower() == "true"
        return cls(tuple(rules), vary)

    def rule_for(self, origin: str, method: str, requested: Iterable[str] = ()) -> CorsRule | None:
        names = [name.strip().lower() for name in requested if name.strip()]
        return next((r for r in self.rules if r.matches(origin, method, names)), None)

    def actual(self, origin: str | None, method: str) -> dict[str, str]:
        """The CORS headers of a normal (non-preflight) answer."""
        headers = {"Vary": "Origin"} if self.vary else {}
        rule = self.rule_for(origin, method) if origin else None
        if rule is None or origin is None:
            return headers
        return {**headers, **_allowed(rule, origin)}

    def preflight(self, origin: str, method: str, requested: str) -> dict[str, str]:
        """OPTIONS: the headers of a 200, or 403 AccessForbidden."""
        names = requested.split(",") if requested else []
        rule = self.rule_for(origin, method, names) if origin and method else None
        if rule is None:
            raise OssError(
                403,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the "
                "evalution of Origin, request method / Access-Control-Request-Method or "
                "Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.",
            )
        headers = _allowed(rule, origin)
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        if self.vary:
            headers["Vary"] = "Origin"
        return headers


def _allowed(rule: CorsRule, origin: str) -> dict[str, str]:
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(rule.methods),
    }
    if rule.expose:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose)
    if rule.max_age is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age)
    return headers


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.I)
