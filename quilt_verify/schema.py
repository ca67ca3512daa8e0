"""Schema conformance of responses against the OpenAPI contract.

Given a request's method and URL and the answer's status and body, :func:`check_response` finds
the contract operation and returns every :class:`Violation`: an undocumented status code, a
missing or non-JSON body where JSON is documented, a missing required field, a wrong type, a
value outside its enumeration or range. Extra fields are never a violation. Each violation
carries the JSON pointer of the problem in the body and a one-line message naming the field.

Rules for the cases a schema does not settle by itself:

- Requests to paths the contract does not describe are not judged (the document lists them).
- The SSE route (``text/event-stream``) is judged by status and content type only.
- An empty body is fine for a status documented without content (204) and for a 2xx answer
  whose documented body requires no field (quilt-api.md section 1: empty 2xx bodies happen);
  anywhere else an empty or non-JSON body is a violation (error answers must carry a JSON body).
- Where the contract lists variants (``oneOf``), a body is explained against the variant it
  comes closest to, and the message names that variant.

Validators are compiled once per schema and cached. In a run, :class:`SchemaChecker` is a client
observer that checks every answered exchange and keeps the violations per test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from quilt_verify import contract
from quilt_verify.catalogue import match
from quilt_verify.client import Exchange
from quilt_verify.redaction import MASK

BASE_URI = "urn:quilt-verify:contract"


@dataclass(frozen=True)
class Violation:
    """One way a response departs from the contract."""

    method: str
    path: str            # the URL path as requested
    status: int
    operation: str       # catalogue key, e.g. ``POST /api/clusters``
    pointer: str         # JSON pointer into the response body; "" is the whole body
    message: str         # one line naming the field
    request_id: str | None = None

    def __str__(self) -> str:
        rid = f" (request_id={self.request_id})" if self.request_id else ""
        return (f"{self.method} {self.path} -> {self.status}: {self.pointer or '/'}: "
                f"{self.message}{rid}")

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "status": self.status,
                "operation": self.operation, "pointer": self.pointer, "message": self.message,
                "request_id": self.request_id}


def format_violations(violations: Iterable[Violation]) -> str:
    """One line per violation, for a failure message."""
    return "\n".join(f"response does not match the contract: {v}" for v in violations)


# -- compiled validators ---------------------------------------------------------------------------
@cache
def _registry() -> Registry:
    resource = Resource(contents=contract.document(), specification=DRAFT202012)
    return Registry().with_resource(BASE_URI, resource)


@cache
def validator(schema_pointer: str) -> Draft202012Validator:
    """A compiled validator for the schema at a JSON pointer of the contract."""
    ref = f"{BASE_URI}#{quote(schema_pointer, safe='/~')}"
    return Draft202012Validator({"$ref": ref}, registry=_registry())


@dataclass(frozen=True)
class _Expected:
    documented: tuple[str, ...]
    content: dict[str, str] | None   # media type -> schema pointer (None: no content)


@cache
def _expectations(key: str) -> dict[str, _Expected]:
    op = contract.by_key()[key]
    statuses = tuple(status for status, _, _ in contract.iter_responses(op))
    out = {}
    for status, response, pointer in contract.iter_responses(op):
        content = response.get("content")
        media: dict[str, str] | None = None
        if content:
            media = {}
            for kind, entry in content.items():
                schema = entry.get("schema") or {}
                ref = schema.get("$ref") if isinstance(schema, dict) else None
                media[kind] = (ref[1:] if isinstance(ref, str) and ref.startswith("#/") else
                               f"{pointer}/content/{contract.escape_pointer(kind)}/schema")
        out[status] = _Expected(statuses, media)
    return out


# -- checking ------------------------------------------------------------------------------------------
_NO_BODY = object()
_NOT_JSON = object()


def check_response(method: str, url: str, status: int, body: Any = None, *,
                   content_type: str | None = None,
                   request_id: str | None = None) -> list[Violation]:
    """The contract violations of one answer.

    ``body`` is the parsed JSON body, or None when the answer had no (JSON) body;
    ``content_type`` (optional) lets a non-JSON answer be named as such.
    """
    if body is None:
        body = _NOT_JSON if content_type and not _is_json(content_type) else _NO_BODY
    return _check(method, url, status, body, content_type, request_id)


def check_exchange(exchange: Exchange) -> list[Violation]:
    """The contract violations of one recorded exchange (nothing when it got no answer)."""
    if exchange.status is None:
        return []
    content_type = _header(exchange.response_headers, "content-type")
    raw = exchange.response_body or b""
    body: Any = _NO_BODY
    if raw.strip():
        body = _NOT_JSON
        if content_type is None or _is_json(content_type):
            try:
                body = json.loads(raw)
            except ValueError:
                body = _NOT_JSON
    return _check(exchange.method, exchange.url, exchange.status, body, content_type,
                  exchange.request_id)


def _check(method: str, url: str, status: int, body: Any, content_type: str | None,
           request_id: str | None, masked: str | None = None) -> list[Violation]:
    endpoint = match(method, url)
    if endpoint is None:
        return []
    path = urlsplit(url).path or url
    expected = _expectations(endpoint.key)

    def violation(pointer: str, message: str) -> Violation:
        return Violation(method.upper(), path, status, endpoint.key, pointer, message, request_id)

    answer = expected.get(str(status))
    if answer is None:
        documented = ", ".join(sorted(expected))
        return [violation("", f"status {status} is not documented for {endpoint.key} "
                              f"(documented: {documented})")]
    if answer.content is None:
        return []
    if "application/json" not in answer.content:
        kinds = ", ".join(answer.content)
        if content_type and not any(content_type.split(";")[0].strip() == k for k in answer.content):
            return [violation("", f"content type {content_type!r} is not the documented {kinds}")]
        return []
    pointer = answer.content["application/json"]
    if body is _NOT_JSON:
        return [violation("", f"the body is not JSON (content type {content_type or 'none'}), "
                              f"a JSON body is documented")]
    if body is _NO_BODY:
        if 200 <= status < 300 and not _requires_anything(pointer):
            return []
        return [violation("", "the body is empty, a JSON body is documented")]
    seen: set[tuple[str, str]] = set()
    out = []
    for error in validator(pointer).iter_errors(body):
        for where, message in _explain(error, masked):
            if (where, message) not in seen:
                seen.add((where, message))
                out.append(violation(where, message))
    return out


def _requires_anything(schema_pointer: str) -> bool:
    schema = contract.resolve(contract.lookup(schema_pointer))
    return bool(schema.get("required") or schema.get("oneOf") or schema.get("anyOf")
                or schema.get("minProperties"))


# -- messages ------------------------------------------------------------------------------------------
def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + contract.escape_pointer(str(p)) for p in parts)


def _field(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _variant_title(error: ValidationError, index: Any) -> str | None:
    try:
        branch = error.schema[error.validator][index]
        return contract.resolve(branch).get("title")
    except (KeyError, IndexError, TypeError, contract.ContractError):
        return None


def _explain(error: ValidationError, masked: str | None = None) -> Iterator[tuple[str, str]]:
    """``(pointer, message)`` for the leaf problems behind one validation error.

    Errors about the value ``masked`` are not problems: in a recorded bundle that is a redacted
    secret whose real value was not kept."""
    if masked is not None and _only_masked(error, masked):
        return
    parts = list(error.absolute_path)
    where, name = _pointer(parts), _field(parts)
    kind = error.validator
    if kind in ("oneOf", "anyOf"):
        yield from _explain_variants(error, where, name, masked)
    elif kind == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        for field in error.validator_value:
            if field not in present:
                yield _pointer([*parts, field]), f"missing required field `{_field([*parts, field])}`"
    elif kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        yield where, (f"`{name}` must be {wanted}, got {json_type(error.instance)} "
                      f"{_short(error.instance)}")
    elif kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        yield where, (f"`{name}` must be one of {', '.join(map(_short, allowed))}, got "
                      f"{_short(error.instance)}")
    elif kind == "not":
        yield where, f"`{name}` must not match {_short(error.validator_value)}"
    else:
        yield where, f"`{name}`: {error.message[:200]}"


def _only_masked(error: ValidationError, masked: str) -> bool:
    """True when every leaf of the error is about the masked value (or a branch of a oneOf/anyOf
    fails only because of it)."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        return any(all(_only_masked(e, masked) for e in errs) for errs in branches.values())
    return error.instance == masked


def _explain_variants(error: ValidationError, where: str, name: str,
                      masked: str | None) -> Iterator[tuple[str, str]]:
    if not error.context:  # oneOf: more than one variant matched
        yield where, f"`{name}` matches more than one documented variant"
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if all(len(errs) == 1 and errs[0].validator == "required" and not errs[0].relative_path
           for errs in branches.values()):
        fields = [f"`{f}`" for errs in branches.values() for f in errs[0].validator_value
                  if not (isinstance(error.instance, dict) and f in error.instance)]
        yield where, f"`{name}` needs one of the fields {', '.join(fields)}"
        return

    def closeness(item: tuple[Any, list[ValidationError]]) -> tuple[bool, int, int]:
        errs = item[1]
        wrong_shape = any(e.validator in ("type", "const", "enum") and not e.relative_path
                          for e in errs)
        return wrong_shape, -max(len(e.relative_path) for e in errs), len(errs)

    index, errs = min(branches.items(), key=closeness)
    title = _variant_title(error, index)
    suffix = f" (closest documented variant: {title})" if title else ""
    for sub in errs:
        for pointer, message in _explain(sub, masked):
            yield pointer, message + suffix


# -- helpers for runs -------------------------------------------------------------------------------
def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class SchemaChecker:
    """A client observer that checks every answered exchange against the contract.

    Violations are kept per test: the test is the one ``test_of()`` names when the exchange is
    seen (e.g. ``lambda: recorder.current_test``), or the one set with :meth:`begin_test`.
    """

    def __init__(self, test_of: Callable[[], str | None] | None = None) -> None:
        self._test_of = test_of
        self._current: str | None = None
        self._found: dict[str | None, list[Violation]] = {}
        self._lock = threading.Lock()
        self.checked = 0

    def begin_test(self, nodeid: str | None) -> None:
        self._current = nodeid

    def __call__(self, event: object) -> None:
        if not isinstance(event, Exchange) or event.status is None:
            return
        found = check_exchange(event)
        test = self._test_of() if self._test_of is not None else self._current
        with self._lock:
            self.checked += 1
            if found:
                self._found.setdefault(test, []).extend(found)

    def take(self, nodeid: str | None) -> list[Violation]:
        """The violations seen during ``nodeid`` (None: outside any test), forgotten after."""
        with self._lock:
            return self._found.pop(nodeid, [])

    def all(self) -> dict[str | None, list[Violation]]:
        with self._lock:
            return {k: list(v) for k, v in self._found.items()}


_TRUNCATED_KEYS = {"truncated", "bytes", "sha256_of_redacted", "head"}


def check_bundle(run_dir: Path) -> list[Violation]:
    """Re-check every exchange recorded in an evidence bundle.

    Bodies there are redacted (a masked secret field is not judged: its value was not kept) and
    very large ones truncated (judged by status only).
    """
    found = []
    for path in sorted((Path(run_dir) / "exchanges").rglob("*.jsonl")):
        # JSON Lines end at "\n" only (str.splitlines would also cut at U+2028 and friends)
        for line in filter(None, path.read_text(encoding="utf-8").split("\n")):
            item = json.loads(line)
            if item.get("kind") != "exchange" or not item.get("response"):
                continue
            request, response = item["request"], item["response"]
            content_type = _header(response.get("headers") or [], "content-type")
            body = response.get("body")
            if isinstance(body, dict) and set(body) == _TRUNCATED_KEYS:
                body = {"__truncated__": True}
                status_only = True
            else:
                status_only = False
                if isinstance(body, dict) and set(body) == {"text"} and not (
                        content_type and _is_json(content_type)):
                    body = _NOT_JSON
                elif body is None:
                    body = _NO_BODY
            violations = _check(request["method"], request["url"], response["status"],
                                body, content_type, item.get("request_id"), masked=MASK)
            if status_only:
                violations = [v for v in violations if v.message.startswith("status ")]
            found += violations
    return found
