"""The small builders the OpenAPI document is written with (package-private: the modules of
http_gateway.openapi share them): a schema reference, a JSON response, the shared error responses,
one operation and a pydantic model's schemas."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    """References to the shared error responses. Every route may answer 500, and 429 to a client
    without credentials that has CLIPORA_MAX_ANONYMOUS_PER_IP requests in flight already."""
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in sorted({*codes, 429, 500})}


def _op(summary: str, responses: dict[str, Any], *, tag: str, errors: tuple[int, ...] = (),
        security: bool = True, session_only: bool = False, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses | _errors(*errors)}
    if not security:
        op["security"] = []
    elif session_only:
        op["security"] = [{"session": []}]
    op.update(extra)
    return op


def _model_schemas(name: str, model: Any) -> dict[str, Any]:
    """A pydantic model and the models it nests (CaptionStyleOptions, WordFix) as components, their refs
    into #/components/schemas."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {name: schema, **nested}
