"""A Serverless Devs template read and rendered the way `s` will.

Both editions are understood: 1.0.0 (component `fc`, `${env(NAME)}`, no defaults: an unset
variable is deployed as the literal `${env(NAME)}`) and 3.0.0 (component `fc3`,
`${env('NAME', 'default')}`, an empty value takes the default). A `.env` beside the template is
read like `s` reads it (the process environment wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The callback's trigger URL exists only after its deploy; any valid URL stands in for it here.
PLACEHOLDER_OUTPUT_URL = "https://callback-url-known-after-deploy.invalid/"
_EXPRESSION = re.compile(r"\$\{(.*?)\}")
_ENV_V1 = re.compile(r"env\((\w+)\)")
_ENV_V3 = re.compile(r"env\('(\w+)'(?:\s*,\s*(?:'([^']*)'|vars\.(\w+)))?\)")
_VARS = re.compile(r"vars\.(\w+)")
_OUTPUT = re.compile(r"(?:resources\.)?(\w+)\.output\.url\.system_url")


class TemplateError(Exception):
    """The template cannot be rendered or deployed as it stands."""


@dataclass(frozen=True)
class Trigger:
    name: str
    type: str
    auth_type: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Function:
    key: str  # the template's service/resource key: "sign", "callback" or "reconcile"
    name: str
    runtime: str
    handler: str
    code: str
    memory: int
    timeout: int
    role: str
    environment: Mapping[str, str]  # raw template text
    triggers: tuple[Trigger, ...]


@dataclass(frozen=True)
class Template:
    path: Path
    edition: str
    variables: Mapping[str, Any]
    functions: Mapping[str, Function]
    service: Mapping[str, Any]  # FC 2.0 service (role, logConfig…); empty on FC 3.0

    @property
    def is_fc3(self) -> bool:
        return self.edition == "3.0.0"

    def code_dir(self, key: str) -> Path:
        return (self.path.parent / self.functions[key].code).resolve()


def load_template(path: Path) -> Template:
    """Parse an edition 1.0.0 (`services:`, fc) or 3.0.0 (`resources:`, fc3) template."""
    data = yaml.safe_load(path.read_text())
    edition = str(data.get("edition"))
    variables = dict(data.get("vars") or {})
    if edition == "3.0.0":
        functions = {key: _fc3_function(key, spec) for key, spec in data["resources"].items()}
        return Template(path, edition, variables, functions, {})
    if edition == "1.0.0":
        functions = {key: _fc_function(key, spec) for key, spec in data["services"].items()}
        return Template(path, edition, variables, functions, dict(variables.get("service") or {}))
    raise TemplateError(f"{path}: unsupported edition {edition!r}")


def _fc_function(key: str, spec: Mapping[str, Any]) -> Function:
    if spec.get("component") != "fc":
        raise TemplateError(f"services.{key}: edition 1.0.0 deploys with component fc")
    props = spec["props"]
    function = props["function"]
    return Function(
        key=key,
        name=str(function["name"]),
        runtime=str(function["runtime"]),
        handler=str(function["handler"]),
        code=str(function["codeUri"]),
        memory=int(function["memorySize"]),
        timeout=int(function["timeout"]),
        role=str(props["service"]),
        environment={k: str(v) for k, v in (function.get("environmentVariables") or {}).items()},
        triggers=tuple(
            Trigger(
                str(t["name"]),
                str(t["type"]),
                str(t["config"].get("authType", "")),  # timer triggers have neither
                tuple(t["config"].get("methods") or ()),
            )
            for t in props.get("triggers") or ()
        ),
    )


def _fc3_function(key: str, spec: Mapping[str, Any]) -> Function:
    if spec.get("component") != "fc3":
        raise TemplateError(f"resources.{key}: edition 3.0.0 deploys with component fc3")
    props = spec["props"]
    return Function(
        key=key,
        name=str(props["functionName"]),
        runtime=str(props["runtime"]),
        handler=str(props["handler"]),
        code=str(props["code"]),
        memory=int(props["memorySize"]),
        timeout=int(props["timeout"]),
        role=str(props.get("role", "")),
        environment={k: str(v) for k, v in (props.get("environmentVariables") or {}).items()},
        triggers=tuple(
            Trigger(
                str(t["triggerName"]),
                str(t["triggerType"]),
                str(t["triggerConfig"].get("authType", "")),  # timer triggers have neither
                tuple(t["triggerConfig"].get("methods") or ()),
            )
            for t in props.get("triggers") or ()
        ),
    )


# --- rendering --------------------------------------------------------------------------------


def env_references(template: Template) -> dict[str, bool]:
    """Every `env(...)` name in the template's values → whether it has a default (3.0.0 only)."""
    text = "\n".join(_strings(yaml.safe_load(template.path.read_text())))
    found: dict[str, bool] = {}
    if template.is_fc3:
        for match in _ENV_V3.finditer(text):
            has_default = match.group(2) is not None or match.group(3) is not None
            found[match.group(1)] = found.get(match.group(1), False) or has_default
    else:
        for match in _ENV_V1.finditer(text):
            found.setdefault(match.group(1), False)
    return found


def _strings(node: object) -> list[str]:
    """Every string value in a parsed YAML document (comments are gone by then)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in _strings(value)]
    return []


def render(
    value: str,
    template: Template,
    environ: Mapping[str, str],
    outputs: Mapping[str, str],
) -> str:
    """Substitute `${...}` as `s` does for this edition; what `s` would leave verbatim raises."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        return _evaluate(expression, template, environ, outputs)

    return _EXPRESSION.sub(one, value)


def _evaluate(
    expression: str, template: Template, environ: Mapping[str, str], outputs: Mapping[str, str]
) -> str:
    if template.is_fc3 and (m := _ENV_V3.fullmatch(expression)):
        name, literal, var = m.groups()
        value = environ.get(name)
        if value:
            return value
        if literal is not None:
            return literal
        if var is not None:
            return str(template.variables[var])
        raise TemplateError(f"env('{name}') not found: set {name} (no default in the template)")
    if not template.is_fc3 and (m := _ENV_V1.fullmatch(expression)):
        name = m.group(1)
        if name not in environ:
            raise TemplateError(
                f"{name} is not set: edition 1.0.0 would deploy the literal ${{env({name})}} "
                "(set it, empty if the setting is optional)"
            )
        return environ[name]
    if m := _VARS.fullmatch(expression):
        return render(str(template.variables[m.group(1)]), template, environ, outputs)
    if m := _OUTPUT.fullmatch(expression):
        if m.group(1) not in outputs:
            raise TemplateError(f"${{{expression}}}: no output for {m.group(1)!r}")
        return outputs[m.group(1)]
    raise TemplateError(f"${{{expression}}} is not understood by this check")


def function_environment(
    template: Template,
    key: str,
    environ: Mapping[str, str],
    outputs: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment FC will give function `key` once deployed."""
    if outputs is None:
        outputs = {other: PLACEHOLDER_OUTPUT_URL for other in template.functions}
    return {
        name: render(value, template, environ, outputs)
        for name, value in template.functions[key].environment.items()
    }


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (optionally quoted, `#` comments) as `s` loads them from `.env`."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        name, _, value = text.partition("=")
        name = name.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def deployment_values(template: Template) -> list[tuple[str, str]]:
    """Region and role(s): the values `s` needs besides the functions' environments."""
    values = [("region", str(template.variables.get("region", "")))]
    if template.is_fc3:
        values += [(f"{key}.role", f.role) for key, f in template.functions.items()]
    else:
        values.append(("service.role", str(template.service.get("role", ""))))
    return values
