"""The OpenAPI 3.1 document of the API, generated from the route table (pure: no I/O).

Nothing here is written by hand per endpoint: each :class:`~publisher.api.framework.Operation`
gives its method, path, scope, query, body and responses, and the pydantic models give the
JSON schemas (OpenAPI 3.1 uses JSON Schema 2020-12, which pydantic writes). So the
document served at ``/api/v1/openapi.json`` is what the code validates and returns, and a
test checks that every route of the live app is in it and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from publisher.api.framework import Operation
from publisher.api.models import Error

REF = "#/components/schemas/{model}"
SCOPES = {
    "read": "a token of any scope",
    "write": "a token of scope `write` or `send`",
    "send": "a token of scope `send`",
}
# Errors any authenticated operation may answer, and what they mean.
COMMON_ERRORS = {
    401: "no token, or an unknown, revoked or expired one",
    403: "the token's scope does not allow this",
    422: "a parameter or a field is invalid",
    429: "too many requests with this token; see Retry-After",
}
ERRORS = {
    400: "the body is not JSON",
    404: "no such resource",
    413: "the body is larger than [web] max_body_bytes",
    409: "the resource's state does not allow this (or the same Idempotency-Key is running)",
    503: "the confirmation email could not be sent",
}
LINK = {"description": 'the next page: `<URL>; rel="next"` (absent on the last page)',
        "schema": {"type": "string"}}  # fmt: skip
RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "string", "pattern": "^[0-9]+$"}}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "run this POST at most once: a retry with the same key and body within "
    "24 hours replays the first response; the same key with another body gets 422",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}


def _models(operations: Sequence[Operation]) -> list[tuple[type[BaseModel], str]]:
    """Every model the operations use, with the mode its schema is needed in."""
    found: dict[tuple[type[BaseModel], str], None] = {(Error, "serialization"): None}
    for op in operations:
        for model in op.statuses.values():
            if model is not None:
                found[(model, "serialization")] = None
        if op.body is not None:
            found[(op.body, "validation")] = None
    return list(found)


def _parameters(op: Operation, query_schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Path ids and the query model's fields as OpenAPI parameters."""
    params: list[dict[str, Any]] = []
    for name in _path_names(op.path):
        schema: dict[str, Any] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"}
        if name in op.ids:
            schema = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if query_schema is not None:
        required = set(query_schema.get("required", ()))
        for name, schema in query_schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    if op.method == "POST":
        params.append(IDEMPOTENCY)
    return params


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }
    if retry:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in op.statuses.items():
        entry: dict[str, Any] = {"description": model.__doc__.split("\n")[0] if model and model.__doc__ else "done"}
        if model is not None:
            entry["content"] = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
        if op.paged:
            entry["headers"] = {"Link": LINK}
        responses[str(status)] = entry
    for status, text in COMMON_ERRORS.items():
        responses[str(status)] = _error(text, retry=status == 429)
    for status in (*op.errors, *((413,) if op.body else ())):
        responses[str(status)] = _error(ERRORS[status], retry=status == 409)
    return responses


def _operation(op: Operation, query_schema: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": (op.description + "\n\n" if op.description else "")
        + f"Needs {SCOPES[op.scope]}.",
        "tags": [op.tag],
        "parameters": _parameters(op, query_schema),
        "responses": _responses(op),
        "security": [{"bearer": []}],
    }
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}},
        }
    return doc


def document(operations: Sequence[Operation], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (paths under ``/api/v1``)."""
    _, top = models_json_schema(_models(operations), ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        query_schema = op.query.model_json_schema(ref_template=REF) if op.query else None
        if query_schema is not None:
            schemas.update(query_schema.pop("$defs", {}))
        path = "/" + "/".join(
            part.split(":")[0] + "}" if part.startswith("{") and ":" in part else part
            for part in op.path.strip("/").split("/")
        )
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, query_schema)
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": {"description": "the OpenAPI 3.1 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} API",
            "version": version,
            "description": "Subscribers, digests, issues and articles of a publisher site. "
            "Errors are always {\"error\": {\"code\", \"message\"}}; lists page by opaque "
            "cursor (`next_cursor`, and a `Link: rel=\"next\"` header).",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `publisher tokens create NAME --scope read|write|send`",
                }
            },
        },
    }
