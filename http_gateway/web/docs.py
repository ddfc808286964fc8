"""The /docs page's content, derived from the project's own OpenAPI document (http_gateway/openapi/).

``api_reference(document, base)`` turns the document into what the template lists: sections
by tag, and per operation its auth, parameters, request fields (with defaults and allowed
values, resolved through ``$ref``), responses and a curl example that carries ``base`` (the
host the reader is using), so a route added to the document appears here with no edit.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

# The quickstart's own options example (API reference, step 2), for multipart JSON parts.
EXAMPLES: dict[str, Any] = {"ProcessOptions": {"numClips": 3, "captionPreset": "mozi", "aspectRatio": "9:16"}}
PATH_EXAMPLES = {"jobId": "JOB_ID", "filename": "clip_01.mp4", "keyId": "KEY_ID"}
STRING_EXAMPLES = {"email": "you@example.com", "password": "a long passphrase 42", "name": "laptop",
                   "url": "https://example.com/talk.mp4", "uri": "https://example.com/talk.mp4"}
TAG_TITLES = {"auth": "Accounts", "keys": "API keys", "billing": "Billing", "jobs": "Upload, jobs and clips",
              "operations": "Operations"}
TAG_ORDER = ("jobs", "auth", "keys", "billing", "operations")


@dataclass
class Field:
    name: str
    type: str
    required: bool
    default: str
    description: str


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: list[str]
    auth: str
    parameters: list[Field]
    body_type: str
    body: list[Field]
    responses: list[tuple[str, str]]
    curl: str


@dataclass
class Section:
    tag: str
    title: str
    operations: list[Operation] = field(default_factory=list)


@dataclass
class Reference:
    title: str
    description: str
    sections: list[Section]
    options: list[Field]  # ProcessOptions, the table the API reference documents
    errors: list[tuple[str, str]]


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        section, name = schema["$ref"].split("/")[-2:]
        schema = doc["components"][section][name]
    return schema


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref") or schema.get("contentSchema", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def type_label(schema: dict[str, Any], doc: dict[str, Any]) -> str:
    name = _ref_name(schema)
    schema = _resolve(schema, doc)
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema and "type" not in schema:  # pydantic's Optional[...]: the non-null branches
        labels = [type_label(s, doc) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " | ".join(labels) + (" | null" if nullable else "")
    kind = schema.get("type", "object")
    kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k != "null"]
    label = "/".join(kinds) or "null"
    if schema.get("format") == "binary":
        label = "file"
    elif schema.get("contentMediaType") == "application/json":
        label = f"string (JSON{': ' + name if name else ''})"
    elif kinds == ["array"]:
        label = f"array of {type_label(schema.get('items', {}), doc)}"
    if "minimum" in schema and "maximum" in schema:
        label += f", {schema['minimum']}–{schema['maximum']}"
    elif "maxLength" in schema:
        label += f", ≤ {schema['maxLength']} chars"
    return label


def fields_of(schema: dict[str, Any], doc: dict[str, Any]) -> list[Field]:
    schema = _resolve(schema, doc)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolve(prop, doc)
        default = json.dumps(resolved["default"]) if "default" in resolved else ""
        if "default" not in resolved and "null" in (resolved.get("type") or []):
            default = "null"
        out.append(Field(name, type_label(prop, doc), name in required, default,
                         prop.get("description") or resolved.get("description", "")))
    return out


def example(schema: dict[str, Any], doc: dict[str, Any], name: str = "") -> Any:
    """A small example value: required properties only (the rest have defaults)."""
    ref = _ref_name(schema) or ("ProcessOptions" if name == "options" else None)
    if ref in EXAMPLES:
        return EXAMPLES[ref]
    schema = _resolve(schema, doc)
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        keep = [k for k in props if k in set(schema.get("required", ())) or k == "options"]
        return {k: example(props[k], doc, k) for k in keep}
    if kind == "array":
        return [example(schema.get("items", {}), doc)]
    if kind in ("integer", "number"):
        return schema.get("default", schema.get("minimum", 1))
    if kind == "boolean":
        return bool(schema.get("default", True))
    return STRING_EXAMPLES.get(schema.get("format", ""), STRING_EXAMPLES.get(name, "…"))


def curl_example(method: str, path: str, op: dict[str, Any], doc: dict[str, Any], base: str) -> str:
    url_path = re.sub(r"\{(\w+)\}", lambda m: PATH_EXAMPLES.get(m.group(1), m.group(1).upper()), path)
    query = [p for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")]
    if query:
        url_path += "?" + "&".join(f"{p['name']}={PATH_EXAMPLES.get(p['name'], p['name'].upper())}" for p in query)
    security = op.get("security", doc.get("security", []))
    session_only = bool(security) and all("session" in s for s in security)
    auth: list[str] = []
    if session_only:
        auth = ["-b jar", f'-H "Origin: {base}"']  # the cookie jar from the login call
    elif security:
        auth = ['-H "X-API-Key: $CLIPORA_API_KEY"']
    if "101" in op.get("responses", {}):  # a WebSocket: curl cannot speak it; websocat can
        ws = base.replace("http", "ws", 1)
        return " ".join(["websocat", *[a for a in auth if a.startswith("-H")], shlex.quote(f"{ws}{url_path}")])
    head = ["curl"]
    if path in ("/api/auth/login", "/api/auth/signup"):
        head.append("-c jar")  # keep the session cookie for the session-only routes
    if method != "get":
        head.append(f"-X {method.upper()}")
    head.append(shlex.quote(f"{base}{url_path}"))
    parts = [" ".join(head), *auth]
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = example(content["application/json"]["schema"], doc)
        parts += ['-H "Content-Type: application/json"', "-d " + shlex.quote(json.dumps(body, separators=(",", ":")))]
    elif "multipart/form-data" in content:
        schema = _resolve(content["multipart/form-data"]["schema"], doc)
        for name, prop in schema.get("properties", {}).items():
            if prop.get("format") == "binary":
                parts.append(f'-F "{name}=@/path/to/video.mp4"')
            else:
                value = example(prop, doc, name)
                text = json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value
                parts.append("-F " + shlex.quote(f"{name}={text}"))
    return " \\\n  ".join(parts)


def _auth_label(op: dict[str, Any], doc: dict[str, Any]) -> str:
    security = op.get("security", doc.get("security", []))
    if not security:
        return "public"
    if all("session" in s for s in security):
        return "signed-in session only (API keys are refused)"
    return "API key (X-API-Key or Bearer) or session cookie"


def api_reference(doc: dict[str, Any], base: str) -> Reference:
    sections: dict[str, Section] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            tag = (op.get("tags") or ["other"])[0]
            section = sections.setdefault(tag, Section(tag, TAG_TITLES.get(tag, tag.title())))
            params = [Field(p["name"], type_label(p.get("schema", {}), doc) + f" ({p['in']})",
                            bool(p.get("required")), "", p.get("description", ""))
                      for p in op.get("parameters", [])]
            content = op.get("requestBody", {}).get("content", {})
            body_type = next(iter(content), "")
            body = fields_of(content[body_type]["schema"], doc) if body_type else []
            responses = []
            for code, response in op["responses"].items():
                described = _resolve(response, doc)
                responses.append((code, described.get("description", "")))
            description = [p.strip() for p in op.get("description", "").split("\n\n") if p.strip()]
            section.operations.append(Operation(
                method.upper(), path, f"{method}-{re.sub(r'[^a-z0-9]+', '-', path.lower()).strip('-')}",
                op.get("summary", ""), description, _auth_label(op, doc), params, body_type, body, responses,
                curl_example(method, path, op, doc, base)))
    order = {t: i for i, t in enumerate(TAG_ORDER)}
    ordered = sorted(sections.values(), key=lambda s: order.get(s.tag, len(order)))
    errors = [(code.removeprefix("E"), r["description"]) for code, r in doc["components"]["responses"].items()]
    options = fields_of(doc["components"]["schemas"]["ProcessOptions"], doc)
    return Reference(doc["info"]["title"], doc["info"].get("description", ""), ordered, options, errors)
