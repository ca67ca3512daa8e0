"""Property-based request bodies drawn from the contract's schemas, and their replay.

:func:`payloads` turns an operation's request schema into a Hypothesis strategy of
:class:`Payload` s: valid bodies (required fields plus a random choice of optional ones, values
within the documented types, ranges and patterns) and near-valid ones (one required field
missing, one field of the wrong type, one value just outside its range or enumeration, a body
that is not an object, truncated JSON, an unknown extra field). :func:`run_property` runs a
property over them with a bounded number of examples, shrinks a failure and raises it with a
replayable, credential-free ``curl`` command (:func:`curl`).

How many examples per endpoint: the ``--quilt-fuzz-examples`` option when the plugin offers it,
else ``QUILT_FUZZ_EXAMPLES``, else :data:`DEFAULT_EXAMPLES` (see :func:`examples_per_endpoint`).
Which examples: the same ones every run unless ``QUILT_FUZZ_SEED`` says otherwise (a release
gate must not flake on a new draw; a nightly run can explore with ``QUILT_FUZZ_SEED=random``).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shlex
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from quilt_verify import contract
from quilt_verify.client import Exchange, QuiltClient
from quilt_verify.errors import QuiltAPIError, QuiltTransportError
from quilt_verify.schema import check_exchange, json_type

ENV_EXAMPLES = "QUILT_FUZZ_EXAMPLES"
ENV_SEED = "QUILT_FUZZ_SEED"
DEFAULT_EXAMPLES = 15
MAX_EXAMPLES = 100_000
AUTH_HEADERS = {
    "tenant": '-H "X-Api-Key: $QUILT_API_KEY"',
    "join-token": '-H "X-Quilt-Join-Token: $QUILT_JOIN_TOKEN"',
    "node-token": '-H "X-Quilt-Node-Token: $QUILT_NODE_TOKEN"',
    "none": "",
}
_UNBOUNDED_INT = 2**31
_TEXT_MAX = 40


def examples_per_endpoint(option: Any = None, environ: Mapping[str, str] = os.environ) -> int:
    """Examples per endpoint: ``option`` (e.g. ``--quilt-fuzz-examples``) if given, else
    ``$QUILT_FUZZ_EXAMPLES``, else :data:`DEFAULT_EXAMPLES`. ValueError names a bad value."""
    for source, value in (("--quilt-fuzz-examples", option), (ENV_EXAMPLES, environ.get(ENV_EXAMPLES))):
        if value is None or value == "":
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{source} must be a whole number, got {value!r}") from None
        if not 1 <= number <= MAX_EXAMPLES:
            raise ValueError(f"{source} must be between 1 and {MAX_EXAMPLES}, got {number}")
        return number
    return DEFAULT_EXAMPLES


def seed_from(environ: Mapping[str, str] = os.environ) -> int | None:
    """The seed of the examples: None (unset: the same examples every run), a number, or a new
    random one for ``QUILT_FUZZ_SEED=random``. ValueError names a bad value."""
    value = (environ.get(ENV_SEED) or "").strip()
    if not value:
        return None
    if value.lower() == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{ENV_SEED} must be a whole number or 'random', got {value!r}") from None


@dataclass(frozen=True)
class Payload:
    """One generated request body: JSON ``body``, or exactly ``raw`` bytes when set."""

    label: str
    body: Any = None
    raw: bytes | None = None

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode("ascii")

    def text(self) -> str:
        return self.content().decode("ascii", "backslashreplace")


def curl(method: str, path: str, payload: Payload | None, auth: str = "tenant") -> str:
    """A replayable command for one request; credentials appear only as shell variables."""
    parts = ["curl", "-sS", "-X", method, f'"$QUILT_BASE_URL{path}"']
    if AUTH_HEADERS.get(auth):
        parts.append(AUTH_HEADERS[auth])
    if payload is not None:
        parts += ["-H", "'Content-Type: application/json'", "--data-binary",
                  shlex.quote(payload.text())]
    return " ".join(parts)


# -- valid values -------------------------------------------------------------------------------
def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return ["object"] if "properties" in schema else ["string", "integer", "boolean", "null"]
    return list(kind) if isinstance(kind, list) else [kind]


def _merge(base: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **variant}
    merged["required"] = [*base.get("required", []), *variant.get("required", [])]
    merged["properties"] = {**base.get("properties", {}), **variant.get("properties", {})}
    return merged


def from_schema(schema: Any, overrides: Mapping[str, SearchStrategy[Any]] | None = None
                ) -> SearchStrategy[Any]:
    """Values valid under ``schema`` (the subset of JSON Schema the contract uses).
    ``overrides`` replace the strategy of top-level properties by name."""
    schema = contract.resolve(schema)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([from_schema(_merge(base, contract.resolve(v)), overrides)
                              for v in schema[key]])
    return st.one_of([_typed(schema, kind, overrides or {}) for kind in _types(schema)])


def _typed(schema: Mapping[str, Any], kind: str,
           overrides: Mapping[str, SearchStrategy[Any]]) -> SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -_UNBOUNDED_INT - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", _UNBOUNDED_INT + 1) - 1)
        return st.integers(min_value=low, max_value=max(low, high))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1e9))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1e9))
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema,
                         exclude_max="exclusiveMaximum" in schema)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema.get("items", {})), min_size=low,
                        max_size=max(low, schema.get("maxItems", 4)))
    props = schema.get("properties", {})
    if not props:
        extra = schema.get("additionalProperties")
        values = from_schema(extra) if isinstance(extra, dict) else st.integers(0, 9)
        return st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=3)
    required = [k for k in schema.get("required", []) if k in props]
    field = {k: overrides[k] if k in overrides else from_schema(v) for k, v in props.items()}
    return st.fixed_dictionaries({k: field[k] for k in required},
                                 optional={k: s for k, s in field.items() if k not in required})


def _string(schema: Mapping[str, Any]) -> SearchStrategy[str]:
    if schema.get("contentEncoding") == "base64":
        return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode("ascii"))
    choices = []
    if schema.get("examples"):
        choices.append(st.sampled_from(list(schema["examples"])))
    if schema.get("pattern"):
        choices.append(st.from_regex(schema["pattern"], fullmatch=True))
    else:
        low = schema.get("minLength", 0)
        choices.append(st.text(min_size=low, max_size=max(low, min(schema.get("maxLength", _TEXT_MAX),
                                                                   _TEXT_MAX))))
    return st.one_of(choices)


# -- near-valid values ----------------------------------------------------------------------------
_WRONG = {"string": "qv", "integer": 7, "number": 1.5, "boolean": True, "array": [], "object": {},
          "null": None}


def _wrong_values(schema: Mapping[str, Any]) -> list[Any]:
    """Values of a JSON type the schema does not allow (at most two)."""
    if "const" in schema or "enum" in schema or "oneOf" in schema or "anyOf" in schema:
        return [{"qv": "wrong"}]
    if "type" not in schema:
        return []  # any JSON value is allowed
    allowed = set(_types(schema))
    if "number" in allowed:
        allowed.add("integer")
    return [v for kind, v in _WRONG.items() if kind not in allowed][:2]


def _out_of_range(schema: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if "minimum" in schema:
        out.append((f"below minimum {schema['minimum']}", schema["minimum"] - 1))
    if "exclusiveMinimum" in schema:
        out.append((f"at exclusive minimum {schema['exclusiveMinimum']}", schema["exclusiveMinimum"]))
    if "maximum" in schema:
        out.append((f"above maximum {schema['maximum']}", schema["maximum"] + 1))
    if schema.get("minLength", 0) > 0:
        out.append(("empty", ""))
    if "maxLength" in schema:
        out.append((f"longer than {schema['maxLength']}", "x" * (schema["maxLength"] + 1)))
    if schema.get("minItems", 0) > 0:
        out.append(("empty array", []))
    if "enum" in schema:
        out.append(("outside its enumeration", "qv-not-in-enum"))
    return out


def mutations(schema: Any, body: Any) -> list[Payload]:
    """Every near-valid variant of a valid ``body`` (one change each)."""
    schema = contract.resolve(schema)
    out: list[Payload] = []
    text = json.dumps(body, separators=(",", ":"))
    if isinstance(body, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key in body:
                out.append(Payload(f"missing required `{key}`",
                                   {k: v for k, v in body.items() if k != key}))
        for key in body:
            if key not in props:
                continue  # free-form (e.g. a map's entries): no type to get wrong
            field = contract.resolve(props[key])
            for value in _wrong_values(field):
                out.append(Payload(f"`{key}` of the wrong type ({json_type(value)})",
                                   {**body, key: value}))
            for what, value in _out_of_range(field):
                out.append(Payload(f"`{key}` {what}", {**body, key: value}))
        out.append(Payload("an unknown extra field (allowed)", {**body, "qv_unknown_field": 1}))
    out.append(Payload("body is an array, not an object", [body]))
    out.append(Payload("body is a string", "qv"))
    out.append(Payload("malformed JSON (truncated)", raw=text[: max(1, len(text) // 2)].encode()))
    return out


def payloads(schema: Any, overrides: Mapping[str, SearchStrategy[Any]] | None = None
             ) -> SearchStrategy[Payload]:
    """Valid and near-valid request bodies for a request schema."""
    valid = from_schema(schema, overrides)
    return st.one_of(valid.map(lambda body: Payload("valid", body)),
                     valid.flatmap(lambda body: st.sampled_from(mutations(schema, body))))


def payloads_for(key: str, overrides: Mapping[str, SearchStrategy[Any]] | None = None
                 ) -> SearchStrategy[Payload]:
    """:func:`payloads` for an operation of the catalogue (``POST /api/clusters``)."""
    schema = contract.request_schema(contract.by_key()[key])
    if schema is None:
        raise ValueError(f"{key} takes no JSON request body")
    return payloads(schema, overrides)


# -- sending and judging ------------------------------------------------------------------------------
@dataclass
class Answer:
    """What one generated request got: its exchange and the contract problems with it."""

    exchange: Exchange | None
    problems: list[str]

    @property
    def status(self) -> int | None:
        return None if self.exchange is None else self.exchange.status

    def json(self) -> Any:
        raw = self.exchange.response_body if self.exchange is not None else None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None


@contextmanager
def _capture(client: QuiltClient):
    seen: list[Exchange] = []

    def observe(event: object) -> None:
        if isinstance(event, Exchange):
            seen.append(event)

    client.observers.append(observe)
    try:
        yield seen
    finally:
        client.observers.remove(observe)


def send(client: QuiltClient, method: str, path: str, payload: Payload, *,
         headers: Mapping[str, str] | None = None, tenant_auth: bool = True) -> Answer:
    """Send one payload and judge the answer: never a 5xx the contract does not document for
    the operation, and a response that matches its schema."""
    problems: list[str] = []
    with _capture(client) as seen:
        try:
            client.request(method, path, content=payload.content(), tenant_auth=tenant_auth,
                           headers={"Content-Type": "application/json", **(headers or {})})
        except QuiltAPIError:
            pass
        except QuiltTransportError as exc:
            problems.append(f"no answer: {exc.reason}")
    exchange = seen[-1] if seen else None
    if exchange is not None and exchange.status is not None:
        violations = check_exchange(exchange)
        undocumented = [v for v in violations if v.message.startswith("status ")]
        if exchange.status >= 500 and undocumented:
            problems.append(f"server error {exchange.status} (request_id={exchange.request_id})")
            violations = [v for v in violations if v not in undocumented]
        problems += [str(v) for v in violations]
    return Answer(exchange, problems)


class PropertyFailure(AssertionError):
    """A generated request broke the property; the message holds the replay."""


def run_property(strategy: SearchStrategy[Payload], attempt: Callable[[Payload], list[str]], *,
                 examples: int, replay: Callable[[Payload], str], seed: int | None = None) -> None:
    """Try ``examples`` generated payloads; ``attempt`` returns the problems with one. The first
    failure is shrunk, and raised with ``replay(payload)`` and its problems. ``seed`` None draws
    the same examples every time."""
    drawn = f"{ENV_SEED}={seed}" if seed is not None else f"{ENV_SEED} unset"

    @settings(max_examples=examples, deadline=None, database=None, print_blob=False,
              derandomize=seed is None, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate, Phase.shrink))
    @given(strategy)
    def holds(payload: Payload) -> None:
        problems = attempt(payload)
        if problems:
            raise PropertyFailure(f"{payload.label} body broke the property:\n"
                                  + "\n".join(problems) + f"\nreplay: {replay(payload)}"
                                  + f"\n(examples drawn with {drawn})")

    if seed is not None:
        holds = hypothesis_seed(seed)(holds)
    holds()
