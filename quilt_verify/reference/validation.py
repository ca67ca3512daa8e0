"""Strict readers for JSON request bodies.

Rule used throughout the reference: a body that is not an object, a missing required field,
a field of the wrong JSON type, or a value outside an enumeration is 422; a value of the right
type that is out of range or badly formatted (CIDR, IP, ranges, lengths) is 400. Both carry
`error_code=VALIDATION_ERROR` and `details.field`. Unknown fields are ignored. `bool` is never
accepted where an integer or number is expected.
"""

from __future__ import annotations

import ipaddress
import json
import math
from typing import Any

from . import faults
from .errors import ApiError, invalid

MAX_NAME = 255
_MISSING = object()


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
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def wrong_type(field: str, expected: str, value: Any) -> ApiError:
    return invalid(field, f"must be {expected}", [expected], json_type(value), status=422)


def check_text(field: str, value: str, *, max_len: int = MAX_NAME, allow_empty: bool = False,
               controls: bool = False) -> str:
    """Length and control-character rules shared by names and short strings."""
    if not value and not allow_empty:
        raise invalid(field, "must not be empty", ["non-empty string"], "empty string")
    if len(value) > max_len:
        raise invalid(field, f"must be at most {max_len} characters", None, f"{len(value)} chars")
    if not controls and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise invalid(field, "must not contain control characters")
    return value


def no_nul(field: str, value: str) -> str:
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    return value


class Body:
    """A decoded JSON object body, read field by field with strict types."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise invalid("body", "must be a JSON object", ["object"], json_type(data),
                          status=422)
        self.data: dict[str, Any] = data

    @staticmethod
    def name(key: str) -> str:
        """The field name used in error details (one place to add nesting later)."""
        return key

    def raw(self, key: str, required: bool = False) -> Any:
        """The raw value, `None` when absent or null; 422 when required and absent/null."""
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                received = "missing" if value is _MISSING else "null"
                raise invalid(self.name(key), "is required", None, received, status=422)
            return None
        return value

    def string(self, key: str, *, required: bool = False, max_len: int = MAX_NAME,
               allow_empty: bool = False, controls: bool = False) -> str | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise wrong_type(self.name(key), "string", value)
        return check_text(self.name(key), value, max_len=max_len, allow_empty=allow_empty,
                          controls=controls)

    def integer(self, key: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not is_int(value):
            raise wrong_type(self.name(key), "integer", value)
        if not lo <= value <= hi:
            raise invalid(self.name(key), f"must be between {lo} and {hi}",
                          [f"integer {lo}..{hi}"], str(value)[:32])
        return value

    def number(self, key: str, lo_exclusive: float, hi: float) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if not is_number(value):
            raise wrong_type(self.name(key), "number", value)
        if not lo_exclusive < value <= hi:
            raise invalid(self.name(key), f"must be > {lo_exclusive} and <= {hi}",
                          [f"number in ({lo_exclusive}, {hi}]"], str(value)[:32])
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise wrong_type(self.name(key), "boolean", value)
        return value

    def choice(self, key: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or value not in allowed:
            raise invalid(self.name(key), f"must be one of {', '.join(allowed)}", list(allowed),
                          json_type(value) if not isinstance(value, str) else value[:64],
                          status=422)
        return value

    def str_map(self, key: str, *, env: bool = False) -> dict[str, str] | None:
        """An object whose values are strings (environment variables when `env`)."""
        value = self.raw(key)
        if value is None:
            return None
        return string_map(self.name(key), value, env=env)

    def str_list(self, key: str, *, required: bool = False, non_empty: bool = False,
                 argv: bool = False) -> list[str] | None:
        value = self.raw(key, required)
        if value is None:
            return None
        field = self.name(key)
        if not isinstance(value, list):
            raise wrong_type(field, "array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise wrong_type(f"{field}[{index}]", "string", item)
            if argv:
                no_nul(f"{field}[{index}]", item)
        if non_empty and not value:
            raise invalid(field, "must not be empty", ["non-empty array of strings"], "[]")
        if argv and value and not value[0]:
            raise invalid(f"{field}[0]", "the program must not be empty")
        return list(value)

    def ip(self, key: str) -> str | None:
        value = self.string(key, max_len=64)
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise invalid(self.name(key), "must be an IP address", ["IPv4 or IPv6 address"],
                          value[:64]) from None


def string_map(field: str, value: Any, *, env: bool = False) -> dict[str, str]:
    if not isinstance(value, dict):
        raise wrong_type(field, "object of strings", value)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise wrong_type(f"{field}.{k}", "string", v)
        if not k:
            raise invalid(field, "keys must not be empty")
        if env:
            if "=" in k:
                raise invalid(f"{field}.{k}", "variable names must not contain '='")
            no_nul(f"{field}.{k}", k)
            no_nul(f"{field}.{k}", v)
        out[k] = v
    return out


def loads_strict(text: str) -> Any:
    """`json.loads` that also rejects NaN/Infinity and lone surrogates (ValueError)."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    data = json.loads(text, parse_constant=reject_constant)
    # Lone surrogates decode fine but can never be stored or echoed as UTF-8.
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    return data


def json_string_field(body: Body, key: str) -> Any:
    """Decode a field that carries JSON text (e.g. `labels_json`); `None` when absent/null."""
    text = body.raw(key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise wrong_type(body.name(key), "string", text)
    try:
        return loads_strict(text)
    except (ValueError, RecursionError, UnicodeError):
        raise invalid(body.name(key), "must be a JSON-encoded string", None, "invalid JSON") from None


def parse_json(raw: bytes) -> Any:
    """Decode a request body; malformed JSON (incl. NaN/Infinity, bad UTF-8) is 400."""
    try:
        return loads_strict(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeError) as exc:
        if faults.on("malformed-json-500"):
            raise RuntimeError("unhandled JSON decode error") from exc
        raise ApiError(400, "VALIDATION_ERROR", "request body is not valid JSON",
                       {"field": "body", "received": type(exc).__name__}) from None
