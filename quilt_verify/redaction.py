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
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from os.path import commonprefix
from typing import Any, TypeVar
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


@lru_cache(maxsize=4096)  # the same few field names come by thousands of times
def is_sensitive_field(name: str) -> bool:
    """Field names whose values are secrets: ``*token*`` (not ``*_id``), key, secret, password, jwt."""
    n = name.lower()
    if n in _EXACT_FIELDS:
        return True
    if "secret" in n or "password" in n or n.endswith("_jwt"):
        return True
    return "token" in n and not n.endswith("_id")


@lru_cache(maxsize=1024)
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
    """A regex matching any of ``words``, factored by common prefixes so matching stays fast.

    Built as a radix tree over the sorted words: a run of characters shared by a group of
    words (or left to one word) is emitted in one piece, so building costs per branch point
    rather than per character. Where a word ends inside another, the longer one is preferred.
    """

    def build(suffixes: list[str]) -> str:  # sorted; all share the prefix already emitted
        optional = suffixes[0] == ""
        branches = []
        for _, group in groupby((w for w in suffixes if w), key=itemgetter(0)):
            members = list(group)
            if len(members) == 1:
                branches.append(re.escape(members[0]))
                continue
            shared = commonprefix(members)
            branches.append(re.escape(shared) + build([w[len(shared):] for w in members]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not optional else "(?:" + "|".join(branches) + ")"
        if optional:
            body = ("(?:" + body + ")?") if len(branches) == 1 else body + "?"
        return body

    ordered = sorted(set(words))
    if not ordered or ordered == [""]:
        return "(?!)"  # matches nothing
    return build(ordered)


# Secrets are matched in tiers: each tier is one compiled trie regex over the forms of some
# secrets. Registering a secret adds a tier of one, and the newest tiers merge like the digits
# of a binary counter (a tier merges into the one before it once it is as large, or while the
# two together stay within SMALL_TIER secrets). Compiling costs ~0.15 ms per secret, so one
# regex rebuilt over all n secrets at every registration would cost O(n^2) over a run (about
# 1 s for 100 node tokens, over a minute for 1000); tiers cost O(n log n), and a scrub runs at most
# log2(n) + 1 matchers over a short text. A text of BIG_TEXT characters or more is scanned
# once, by one matcher over every form (compiled on demand, kept until the next
# registration), since there one scan costs more than one compile.
SMALL_TIER = 2
BIG_TEXT = 64 * 1024
BIG_MEMO = 2


class _Tier:
    __slots__ = ("secrets", "_text_re", "_bytes_re")

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self._text_re: re.Pattern[str] | None = None
        self._bytes_re: re.Pattern[bytes] | None = None

    def forms(self) -> set[str]:
        return {form for secret in self.secrets for form in encoded_forms(secret)}

    def text_re(self) -> re.Pattern[str]:
        if self._text_re is None:
            self._text_re = re.compile(_trie_pattern(self.forms()))
        return self._text_re

    def bytes_re(self) -> re.Pattern[bytes]:
        """Text is matched as UTF-8."""
        if self._bytes_re is None:
            words = [f.encode("utf-8").decode("latin-1") for f in self.forms()]
            self._bytes_re = re.compile(_trie_pattern(words).encode("latin-1"))
        return self._bytes_re


class SecretRegistry:
    """Thread-safe set of secrets with lazily compiled matchers over all their forms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {}
        self._tiers: list[_Tier] = []
        self._text_re: re.Pattern[str] | None = None
        self._bytes_re: re.Pattern[bytes] | None = None
        self._text_list: list[re.Pattern[str]] | None = None
        self._bytes_list: list[re.Pattern[bytes]] | None = None
        self.generation = 0  # +1 at every registration

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
            self.generation += 1
            self._text_re = None
            self._bytes_re = None
            self._text_list = None
            self._bytes_list = None
            tiers = self._tiers
            tiers.append(_Tier([value]))
            while len(tiers) >= 2 and (len(tiers[-1].secrets) >= len(tiers[-2].secrets)
                                       or len(tiers[-1].secrets) + len(tiers[-2].secrets)
                                       <= SMALL_TIER):
                last = tiers.pop()
                tiers[-1] = _Tier(tiers[-1].secrets + last.secrets)

    def __contains__(self, value: object) -> bool:
        return value in self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def labels(self) -> dict[str, str]:
        with self._lock:
            return dict(self._labels)

    def tier_sizes(self) -> list[int]:
        """How many secrets each matcher covers (largest first)."""
        with self._lock:
            return [len(t.secrets) for t in self._tiers]

    def _form_map(self) -> dict[str, str]:
        forms: dict[str, str] = {}
        for secret, label in self._labels.items():
            for form in encoded_forms(secret):
                forms.setdefault(form, label)
        return forms

    def text_patterns(self) -> list[re.Pattern[str]]:
        """The matchers that together find every form of every secret (compiled on demand)."""
        cached = self._text_list  # read without the lock: replaced, never mutated
        if cached is not None:
            return cached
        with self._lock:
            if self._text_list is None:
                self._text_list = [tier.text_re() for tier in self._tiers]
            return self._text_list

    def bytes_patterns(self) -> list[re.Pattern[bytes]]:
        cached = self._bytes_list
        if cached is not None:
            return cached
        with self._lock:
            if self._bytes_list is None:
                self._bytes_list = [tier.bytes_re() for tier in self._tiers]
            return self._bytes_list

    def text_matchers(self, length: int) -> list[re.Pattern[str]]:
        """The matchers to scan a text of ``length`` characters with."""
        if length >= BIG_TEXT:
            one = self.text_pattern()
            return [] if one is None else [one]
        return self.text_patterns()

    def bytes_matchers(self, length: int) -> list[re.Pattern[bytes]]:
        if length >= BIG_TEXT:
            one = self.bytes_pattern()
            return [] if one is None else [one]
        return self.bytes_patterns()

    def text_pattern(self) -> re.Pattern[str] | None:
        """One matcher over every form (compiled on demand, until the next registration).
        The scrubbers use :meth:`text_patterns`, which stay cheap as the registry grows."""
        with self._lock:
            if self._text_re is None and self._labels:
                self._text_re = re.compile(_trie_pattern(self._form_map()))
            return self._text_re

    def bytes_pattern(self) -> re.Pattern[bytes] | None:
        """A bytes matcher over every form; text is matched as UTF-8."""
        with self._lock:
            if self._bytes_re is None and self._labels:
                words = [f.encode("utf-8").decode("latin-1") for f in self._form_map()]
                self._bytes_re = re.compile(_trie_pattern(words).encode("latin-1"))
            return self._bytes_re

    def label_of_form(self, form: str) -> str:
        """Which secret (by label, never by value) a matched form belongs to."""
        with self._lock:
            return self._form_map().get(form, "secret")


_AnyStr = TypeVar("_AnyStr", str, bytes)


def _mask_matches(patterns: list[re.Pattern[_AnyStr]], data: _AnyStr, mask: _AnyStr) -> _AnyStr:
    """Replace every match of every pattern with ``mask``; where matches of different patterns
    overlap, their union is masked (so no part of either secret survives)."""
    if len(patterns) == 1:
        return patterns[0].sub(mask, data)
    hits = [pattern for pattern in patterns if pattern.search(data)]
    if not hits:
        return data
    if len(hits) == 1:
        return hits[0].sub(mask, data)
    spans = [m.span() for pattern in hits for m in pattern.finditer(data)]
    spans.sort()
    pieces: list[_AnyStr] = []
    pos = 0
    cur_start, cur_end = spans[0]
    for start, end in spans[1:]:
        if start < cur_end:
            cur_end = max(cur_end, end)
            continue
        pieces += [data[pos:cur_start], mask]
        pos, cur_start, cur_end = cur_end, start, end
    pieces += [data[pos:cur_start], mask, data[cur_end:]]
    return data[:0].join(pieces)


class Redactor:
    """Applies the header and field rules, and scrubs every registered secret."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        self.registry = registry or SecretRegistry()
        # Big texts found clean at one registry generation: the same payload often comes by
        # twice (an upload's content in its download, a repeated oversize body), and comparing
        # is ~40x cheaper than scanning. Kept: at most BIG_MEMO texts, of that generation.
        self._clean_big: tuple[int, tuple[str, ...]] = (-1, ())

    # -- harvesting ---------------------------------------------------------------------------
    def harvest_headers(self, headers: Iterable[tuple[str, str]]) -> None:
        for name, value in headers:
            if is_sensitive_header(name):
                scheme, _, rest = value.partition(" ")
                if rest and scheme.lower() in ("bearer", "basic", "token"):
                    self.registry.add(rest.strip(), f"header:{name.lower()}")
                self.registry.add(value, f"header:{name.lower()}")

    def harvest_json(self, obj: Any) -> bool:
        """Register every string (or number) value found under a sensitive field name.

        Returns True when every such value is now registered, so scrubbing the raw text is as
        good as masking the fields; False when one was too short to register.
        """
        complete = True
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for key, value in item.items():
                    if isinstance(key, str) and is_sensitive_field(key):
                        for leaf in _leaves(value):
                            self.registry.add(str(leaf), f"field:{key}", force=False)
                            complete = complete and str(leaf) in self.registry
                    stack.append(value)
            elif isinstance(item, list):
                stack.extend(item)
        return complete

    # -- scrubbing ----------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """Replace every form of every secret; percent-encoding of any kind is seen through."""
        if not text:
            return text
        if len(text) >= BIG_TEXT and not self.contains_secret(text):
            return text
        patterns = self.registry.text_matchers(len(text))
        if not patterns:
            return text
        text = _mask_matches(patterns, text, MASK)
        if "%" in text:
            decoded = unquote(text)
            scrubbed = _mask_matches(patterns, decoded, MASK)
            if scrubbed != decoded:
                return scrubbed
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        if not data:
            return data
        patterns = self.registry.bytes_matchers(len(data))
        if not patterns:
            return data
        mask = MASK.encode()
        data = _mask_matches(patterns, data, mask)
        if b"%" in data:
            decoded = unquote_to_bytes(data)
            scrubbed = _mask_matches(patterns, decoded, mask)
            if scrubbed != decoded:
                return scrubbed
        return data

    def contains_secret(self, text: str) -> bool:
        """Whether :meth:`scrub_text` would change ``text``."""
        if not text:
            return False
        if len(text) < BIG_TEXT:
            return self._scan(text)
        generation = self.registry.generation  # read before the scan: a later secret voids it
        memo_generation, clean = self._clean_big
        if memo_generation == generation and any(text == known for known in clean):
            return False
        if self._scan(text):
            return True
        if memo_generation == generation:
            self._clean_big = (generation, (*clean[-(BIG_MEMO - 1):], text))
        else:
            self._clean_big = (generation, (text,))
        return False

    def _scan(self, text: str) -> bool:
        patterns = self.registry.text_matchers(len(text))
        if any(p.search(text) for p in patterns):
            return True
        if patterns and "%" in text:
            decoded = unquote(text)
            return any(p.search(decoded) for p in patterns)
        return False

    def echoes(self, obj: Any, pointer: str = "") -> list[tuple[str, str]]:
        """(JSON pointer, secret label) of every string outside a sensitive field that carries a
        registered secret: a response that repeats a credential where none belongs."""
        found: list[tuple[str, str]] = []
        if isinstance(obj, dict):
            for key, value in obj.items():
                if isinstance(key, str) and is_sensitive_field(key):
                    continue
                found += self.echoes(value, f"{pointer}/{key}")
        elif isinstance(obj, list):
            for index, value in enumerate(obj):
                found += self.echoes(value, f"{pointer}/{index}")
        elif isinstance(obj, str) and len(obj) >= MIN_HARVEST_LEN:
            form = self.find_in_bytes(obj.encode("utf-8"))
            if form is not None:
                found.append((pointer or "/", self.registry.label_of_form(form)))
        return found

    def find_in_bytes(self, data: bytes) -> str | None:
        """The matched form of the first secret found in ``data`` (as is, or percent-decoded)."""
        patterns = self.registry.bytes_matchers(len(data))
        if not patterns:
            return None
        for candidate in (data, unquote_to_bytes(data) if b"%" in data else None):
            if candidate is None:
                continue
            found = [m for m in (p.search(candidate) for p in patterns) if m is not None]
            if found:
                first = min(found, key=lambda m: m.start())
                return first.group(0).decode("utf-8", "replace")
        return None

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> list[list[str]]:
        headers = list(headers)
        self.harvest_headers(headers)
        values = [value for name, value in headers if not is_sensitive_header(name)]
        scrub = self.scrub_text if self.contains_secret("\n".join(values)) else _same
        return [
            [name, MASK if is_sensitive_header(name) else scrub(value)]
            for name, value in headers
        ]

    def redact_json(self, obj: Any) -> Any:
        """A redacted copy: sensitive fields masked, every string (and key) scrubbed.

        All keys and strings are first checked together, joined by newlines (a match inside
        one string is a match in the joined text; a percent escape cannot span the newline),
        so a body without secrets costs one scan instead of one per string."""
        self.harvest_json(obj)
        strings: list[str] = []
        masked = _mask_fields(obj, strings)
        small = [text for text in strings if len(text) < BIG_TEXT]
        big = [text for text in strings if len(text) >= BIG_TEXT]
        if self.contains_secret("\n".join(small)) or any(map(self.contains_secret, big)):
            return self._scrub_tree(masked)
        return masked

    def _scrub_tree(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {(self.scrub_text(key) if isinstance(key, str) else key): self._scrub_tree(value)
                    for key, value in obj.items()}
        if isinstance(obj, list):
            return [self._scrub_tree(v) for v in obj]
        if isinstance(obj, str):
            return self.scrub_text(obj)
        return obj


def _same(text: str) -> str:
    return text


def _mask_fields(obj: Any, strings: list[str]) -> Any:
    """A copy with the values of sensitive fields masked; collects every key and string."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(key, str):
                strings.append(key)
                if value is not None and is_sensitive_field(key):
                    out[key] = MASK
                    continue
            out[key] = _mask_fields(value, strings)
        return out
    if isinstance(obj, list):
        return [_mask_fields(v, strings) for v in obj]
    if isinstance(obj, str):
        strings.append(obj)
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
