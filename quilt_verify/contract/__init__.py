"""The machine-readable contract: the OpenAPI 3.1 description of the seed-scope Quilt API.

``quilt-openapi.yaml`` beside this file is written by hand from ``quilt-api.md`` (never generated
from the reference backend). It is the one list of endpoints: the catalogue
(:mod:`quilt_verify.catalogue`) is read from it, response schema checks
(:mod:`quilt_verify.schema`) validate against it, and the property-based suite draws request
bodies from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

OPENAPI_PATH = Path(__file__).resolve().parent / "quilt-openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# security scheme name -> the catalogue's auth kind
AUTH_KINDS = {"ApiKey": "tenant", "Bearer": "tenant", "EventToken": "tenant",
              "JoinToken": "join-token", "NodeToken": "node-token"}


class ContractError(Exception):
    """The contract file is malformed (a defect of this package, not of a target)."""


@dataclass(frozen=True)
class Operation:
    """One path + method of the contract."""

    method: str          # upper case
    path: str            # OpenAPI path, e.g. /api/clusters/{cluster_id}
    template: str        # catalogue template, e.g. /api/clusters/:cluster_id
    operation_id: str
    capability: str
    auth: str            # none | tenant | join-token | node-token
    spec: dict[str, Any]  # the operation object (path-level parameters merged in)

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def pointer(self) -> str:
        """JSON pointer of the operation object inside the document."""
        return f"/paths/{escape_pointer(self.path)}/{self.method.lower()}"


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def document() -> dict[str, Any]:
    """The parsed OpenAPI document (read once; treat as read-only)."""
    try:
        with OPENAPI_PATH.open(encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=_loader())  # a safe loader (C or pure Python)
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"cannot read {OPENAPI_PATH.name}: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        raise ContractError(f"{OPENAPI_PATH.name} is not an OpenAPI 3.1 document")
    return doc


def resolve(node: Any) -> Any:
    """Follow a local ``$ref`` (``#/...``) until a non-reference node."""
    seen = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen or not ref.startswith("#/"):
            raise ContractError(f"unresolvable $ref {ref!r}")
        seen.add(ref)
        node = lookup(ref[1:])
    return node


def lookup(pointer: str) -> Any:
    """The node at a JSON pointer (``/components/schemas/Cluster``) of the document."""
    node: Any = document()
    for raw in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ContractError(f"no {pointer!r} in the contract") from None
    return node


def _template(path: str, parameters: list[dict[str, Any]]) -> str:
    rest = {p["name"] for p in parameters if p.get("in") == "path" and p.get("x-quilt-rest-of-path")}
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            parts.append(("*" if name in rest else ":") + name)
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


def _auth(security: list[dict[str, Any]]) -> str:
    if not security:
        return "none"
    kinds = {AUTH_KINDS.get(name, "?") for requirement in security for name in requirement}
    if len(kinds) != 1 or "?" in kinds:
        raise ContractError(f"operation security {security!r} maps to no single auth kind")
    return kinds.pop()


@cache
def operations() -> tuple[Operation, ...]:
    """Every operation in document order."""
    doc = document()
    default_security = doc.get("security", [])
    out = []
    for path, item in doc.get("paths", {}).items():
        shared = [resolve(p) for p in item.get("parameters", [])]
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            own = [resolve(p) for p in op.get("parameters", [])]
            names = {(p["name"], p["in"]) for p in own}
            params = [p for p in shared if (p["name"], p["in"]) not in names] + own
            capability = op.get("x-quilt-capability")
            if not capability or not op.get("operationId"):
                raise ContractError(f"{method.upper()} {path} lacks operationId or x-quilt-capability")
            out.append(Operation(
                method=method.upper(), path=path, template=_template(path, params),
                operation_id=op["operationId"], capability=str(capability),
                auth=_auth(op.get("security", default_security)),
                spec={**op, "parameters": params},
            ))
    return tuple(out)


def by_key() -> dict[str, Operation]:
    """Operations by catalogue key (``POST /api/clusters``)."""
    return {op.key: op for op in operations()}


def by_operation_id() -> dict[str, Operation]:
    return {op.operation_id: op for op in operations()}


def request_schema(op: Operation) -> dict[str, Any] | None:
    """The JSON request body schema of an operation (``$ref`` kept), or None."""
    body = resolve(op.spec.get("requestBody"))
    if not body:
        return None
    media = (body.get("content") or {}).get("application/json")
    return None if media is None else media.get("schema")


def iter_responses(op: Operation) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(status, response object, JSON pointer of the response object)`` for each status."""
    for status, response in (op.spec.get("responses") or {}).items():
        pointer = f"{op.pointer}/responses/{status}"
        while isinstance(response, dict) and "$ref" in response:
            pointer = response["$ref"][1:]
            response = lookup(pointer)
        yield str(status), response, pointer
