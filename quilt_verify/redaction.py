"""Redaction: header and field rules plus a registry of every secret value seen in the run.

Every registered secret is scrubbed in any of its encoded forms (raw, URL-encoded, JSON-escaped,
base64 at any alignment) anywhere in text, and the same forms drive the final leak scan over
the bundle. Field rules alone are not trusted: a value harvested from a sensitive field is
registered too, so it is also scrubbed where it reappears (in a URL, a message, a log line).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_to_bytes

MASK = "[REDACTED]"
SENSITIVE_HEADERS = frozenset({
    "x-api-key", "authorization", "proxy-authorization", "x-quilt-join-token",
    "x-quilt-node-token", "x-quilt-agent-key", "cookie", "set-cookie",
})
_EXACT_FIELDS = frozenset({"key", "api_key", "apikey", "secret", "password", "jwt", "passwd"})
# Harvested values shorter than this are not registered (too likely to collide with ordinary text).
MIN_HARVEST_LEN = 8
# Base64 fragments shorter than this are not used as scrub/scan forms.
MIN_B64_FORM_LEN = 8


def is_sensitive_field(name: str) -> bool:
    """Field names whose values are secrets: ``*token*`` (not ``*_id``), key, secret, password, jwt."""
    n = name.lower()
    if n in _EXACT_FIELDS:
        return True
    if "secret" in n or "password" in n or n.endswith("_jwt"):
        return True
    return "token" in n and not n.endswith("_id")


def is_sensitive_header(name: str) -> bool:
    return name.lower() in SENSITIVE_HEADERS


def _b64_forms(raw: bytes) -> set[str]:
    """Every base64 substring that must appear when ``raw`` is encoded inside a longer blob."""
    forms: set[str] = set()
    n = len(raw)
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = -(-8 * offset // 6)  # first char made only of secret bits
        end = (8 * (offset + n)) // 6  # one past the last such char
        core = encoded[start:end]
        if len(core) >= MIN_B64_FORM_LEN:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return forms


def encoded_forms(secret: str) -> set[str]:
    """The forms in which ``secret`` could appear in an artifact."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= _b64_forms(secret.encode("utf-8"))
    return {f for f in forms if f}


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, factored by common prefixes so matching stays fast."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        if list(node) == [""]:
            return ""
        optional = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        body = branches[0] if len(branches) == 1 and not optional else "(?:" + "|".join(branches) + ")"
        if optional:
            body = ("(?:" + body + ")?") if len(branches) == 1 else body + "?"
        return body

    return build(trie)


class SecretRegistry:
    """Thread-safe set of secrets with a lazily rebuilt matcher over all their forms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {}
        self._text_re: re.Pattern[str] | None = None
        self._bytes_re: re.Pattern[bytes] | None = None

    def add(self, value: str | None, label: str = "secret", *, force: bool = True) -> None:
        """Register ``value``; with ``force`` False short values are ignored (harvesting)."""
        if not value or value == MASK:
            return
        if not force and len(value) < MIN_HARVEST_LEN:
            return
        with self._lock:
            if value in self._labels:
                return
            self._labels[value] = label
            self._text_re = None
            self._bytes_re = None

    def __contains__(self, value: object) -> bool:
        return value in self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def labels(self) -> dict[str, str]:
        with self._lock:
            return dict(self._labels)

    def _form_map(self) -> dict[str, str]:
        forms: dict[str, str] = {}
        for secret, label in self._labels.items():
            for form in encoded_forms(secret):
                forms.setdefault(form, label)
        return forms

    def text_pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._text_re is None and self._labels:
                self._text_re = re.compile(_trie_pattern(self._form_map()))
            return self._text_re

    def bytes_pattern(self) -> re.Pattern[bytes] | None:
        """A bytes matcher; text is matched as UTF-8."""
        with self._lock:
            if self._bytes_re is None and self._labels:
                words = [f.encode("utf-8").decode("latin-1") for f in self._form_map()]
                self._bytes_re = re.compile(_trie_pattern(words).encode("latin-1"))
            return self._bytes_re

    def label_of_form(self, form: str) -> str:
        """Which secret (by label, never by value) a matched form belongs to."""
        with self._lock:
            return self._form_map().get(form, "secret")


class Redactor:
    """Applies the header and field rules, and scrubs every registered secret."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        self.registry = registry or SecretRegistry()

    # -- harvesting ---------------------------------------------------------------------------
    def harvest_headers(self, headers: Iterable[tuple[str, str]]) -> None:
        for name, value in headers:
            if is_sensitive_header(name):
                scheme, _, rest = value.partition(" ")
                if rest and scheme.lower() in ("bearer", "basic", "token"):
                    self.registry.add(rest.strip(), f"header:{name.lower()}")
                self.registry.add(value, f"header:{name.lower()}")

    def harvest_json(self, obj: Any) -> None:
        """Register every string (or number) value found under a sensitive field name."""
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for key, value in item.items():
                    if isinstance(key, str) and is_sensitive_field(key):
                        for leaf in _leaves(value):
                            self.registry.add(str(leaf), f"field:{key}", force=False)
                    stack.append(value)
            elif isinstance(item, list):
                stack.extend(item)

    # -- scrubbing ----------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """Replace every form of every secret; percent-encoding of any kind is seen through."""
        pattern = self.registry.text_pattern()
        if pattern is None or not text:
            return text
        text = pattern.sub(MASK, text)
        if "%" in text:
            decoded = unquote(text)
            scrubbed = pattern.sub(MASK, decoded)
            if scrubbed != decoded:
                return scrubbed
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        pattern = self.registry.bytes_pattern()
        if pattern is None or not data:
            return data
        data = pattern.sub(MASK.encode(), data)
        if b"%" in data:
            decoded = unquote_to_bytes(data)
            scrubbed = pattern.sub(MASK.encode(), decoded)
            if scrubbed != decoded:
                return scrubbed
        return data

    def find_in_bytes(self, data: bytes) -> str | None:
        """The matched form of the first secret found in ``data`` (as is, or percent-decoded)."""
        pattern = self.registry.bytes_pattern()
        if pattern is None:
            return None
        match = pattern.search(data)
        if match is None and b"%" in data:
            match = pattern.search(unquote_to_bytes(data))
        return match.group(0).decode("utf-8", "replace") if match else None

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> list[list[str]]:
        headers = list(headers)
        self.harvest_headers(headers)
        return [
            [name, MASK if is_sensitive_header(name) else self.scrub_text(value)]
            for name, value in headers
        ]

    def redact_json(self, obj: Any) -> Any:
        """A redacted copy: sensitive fields masked, every string (and key) scrubbed."""
        self.harvest_json(obj)
        return self._redact(obj)

    def _redact(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            out: dict[str, Any] = {}
            for key, value in obj.items():
                skey = self.scrub_text(key) if isinstance(key, str) else key
                if isinstance(key, str) and is_sensitive_field(key) and value is not None:
                    out[skey] = MASK
                else:
                    out[skey] = self._redact(value)
            return out
        if isinstance(obj, list):
            return [self._redact(v) for v in obj]
        if isinstance(obj, str):
            return self.scrub_text(obj)
        return obj


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield value
