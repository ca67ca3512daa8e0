import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from quilt_verify.redaction import MASK, Redactor, encoded_forms, is_sensitive_field

SECRET_ALPHABET = st.characters(min_codepoint=33, max_codepoint=126)
secrets_st = st.text(SECRET_ALPHABET, min_size=16, max_size=48).map(lambda s: "qs_" + s)
# Ordinary values: short words that cannot contain a 16+ character secret.
plain = st.one_of(st.integers(), st.booleans(), st.none(),
                  st.text(st.characters(codec="utf-8"), max_size=12))
SAFE_KEYS = st.sampled_from(["id", "name", "state", "node_id", "token_id", "items", "count",
                             "message", "labels", "api_keys"])


def contains_any_form(text: str, secret: str) -> bool:
    return any(form in text for form in encoded_forms(secret))


@st.composite
def documents_with_secrets(draw):
    """A JSON document of random shape with secrets planted at random places and depths."""
    planted = draw(st.lists(secrets_st, min_size=1, max_size=4, unique=True))

    def embed(value):
        how = draw(st.sampled_from(["raw", "url", "base64", "in-text", "json-field"]))
        if how == "raw":
            return value
        if how == "url":
            return f"/api/events?token={quote(value, safe='')}&x=1"
        if how == "base64":
            pad = draw(st.binary(max_size=5))
            return base64.b64encode(pad + value.encode() + b"tail").decode()
        if how == "in-text":
            return f"node token is {value}, keep it safe"
        return json.dumps({"inner": value})

    children = st.recursive(
        plain,
        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                st.dictionaries(SAFE_KEYS, inner, max_size=3)),
        max_leaves=12,
    )
    doc = {"data": draw(children)}
    for secret in planted:
        # walk to a random dict/list at a random depth and plant there
        node = doc
        for _ in range(draw(st.integers(0, 3))):
            nxt = [v for v in (node.values() if isinstance(node, dict) else node)
                   if isinstance(v, (dict, list))]
            if not nxt:
                break
            node = draw(st.sampled_from(nxt))
        if isinstance(node, dict):
            node[draw(SAFE_KEYS) + "_x"] = embed(secret)
        else:
            node.append(embed(secret))
    return planted, doc


@given(documents_with_secrets())
@settings(max_examples=150, deadline=None)
def test_registered_secrets_never_survive_anywhere(case):
    planted, doc = case
    redactor = Redactor()
    for secret in planted:
        redactor.registry.add(secret, "test")
    out = json.dumps(redactor.redact_json(doc), ensure_ascii=False)
    for secret in planted:
        assert not contains_any_form(out, secret)
        assert secret not in out


@given(st.recursive(plain, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(SAFE_KEYS, inner, max_size=3)), max_leaves=20),
    st.lists(secrets_st, max_size=3))
@settings(max_examples=150, deadline=None)
def test_non_secrets_survive_unchanged(doc, registered):
    redactor = Redactor()
    for secret in registered:
        redactor.registry.add(secret, "test")
    assert redactor.redact_json(doc) == doc


@given(st.sampled_from(["node_token", "join_token", "X_TOKEN", "refresh_token", "key", "api_key",
                        "secret", "client_secret", "password", "jwt"]),
       st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=8, max_size=40),
       st.integers(0, 3))
def test_sensitive_fields_are_masked_at_any_depth_and_harvested(field, value, depth):
    doc = {field: value}
    for _ in range(depth):
        doc = {"wrap": [doc]}
    doc["echo"] = f"see {value}"
    redactor = Redactor()
    out = redactor.redact_json(doc)
    text = json.dumps(out)
    assert MASK in text
    assert value not in text  # the harvested value is scrubbed where it reappears, too
    assert value in redactor.registry


def test_field_rules():
    for name in ("node_token", "join_token", "token", "key", "api_key", "secret", "password",
                 "jwt", "client_secret"):
        assert is_sensitive_field(name), name
    for name in ("token_id", "id", "name", "api_keys", "prefix", "key_id", "state"):
        assert not is_sensitive_field(name), name


def test_headers_masked_and_bearer_value_registered():
    redactor = Redactor()
    headers = [("Authorization", "Bearer eyJhbGciOi.payload.sig"), ("X-Api-Key", "quilt_sk_abc12345"),
               ("X-Quilt-Node-Token", "qnt_0123456789"), ("Content-Type", "application/json")]
    out = redactor.redact_headers(headers)
    assert out == [["Authorization", MASK], ["X-Api-Key", MASK], ["X-Quilt-Node-Token", MASK],
                   ["Content-Type", "application/json"]]
    text = redactor.scrub_text("jwt=eyJhbGciOi.payload.sig key=quilt_sk_abc12345 qnt_0123456789")
    assert "eyJ" not in text and "quilt_sk" not in text and "qnt_" not in text


def test_encoded_forms_are_all_scrubbed():
    secret = "qnt_A+b/c=d e&f%g\"h"
    redactor = Redactor()
    redactor.registry.add(secret)
    for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
                 base64.b64encode(secret.encode()).decode(),
                 base64.urlsafe_b64encode(b"xy" + secret.encode()).decode()):
        assert not contains_any_form(redactor.scrub_text(f"<{form}>"), secret), form
    assert not contains_any_form(redactor.scrub_bytes(secret.encode()).decode(), secret)


def test_short_harvested_values_are_ignored_but_configured_ones_are_not():
    redactor = Redactor()
    redactor.harvest_json({"token": "abc"})
    assert "abc" not in redactor.registry
    redactor.registry.add("abc", "configured")
    assert redactor.scrub_text("xabcx") == f"x{MASK}x"


def test_registry_tiers_stay_few_and_cover_every_secret():
    """Registering n secrets keeps O(log n) matchers (so a registration never recompiles them
    all), and together they still cover every secret."""
    redactor = Redactor()
    values = [f"qnt_{i:04d}_" + "x" * 20 for i in range(300)]
    for value in values:
        redactor.registry.add(value, "node_token")
        sizes = redactor.registry.tier_sizes()
        assert sum(sizes) == len(redactor.registry)
        assert len(sizes) <= len(redactor.registry).bit_length(), sizes
    text = " ".join(values[::7])
    assert redactor.scrub_text(text) == " ".join([MASK] * len(values[::7]))


def test_overlapping_secrets_in_different_tiers_are_masked_whole():
    """A secret inside another one, matched by another tier: the union of both matches is
    masked, so no part of the longer secret survives."""
    redactor = Redactor()
    inner = "innersecret-0123456789"
    outer = "qnt_prefix-" + inner + "-suffix"
    for i in range(15):
        redactor.registry.add(f"filler-secret-{i:02d}-abcdefgh")
    redactor.registry.add(inner)
    redactor.registry.add(outer)
    assert len(redactor.registry.tier_sizes()) == 2
    assert redactor.scrub_text(f"a {outer} b {inner} c") == f"a {MASK} b {MASK} c"
    assert redactor.scrub_bytes(f"<{outer}>".encode()) == f"<{MASK}>".encode()
    assert redactor.find_in_bytes(f"zz {outer}".encode()) in (outer, inner)


@given(st.lists(secrets_st, min_size=17, max_size=31, unique=True), st.data())
@settings(max_examples=40, deadline=None)
def test_every_tier_scrubs_every_form(secrets_list, data):
    redactor = Redactor()
    for secret in secrets_list:
        redactor.registry.add(secret, "test")
    assert len(redactor.registry.tier_sizes()) >= 2
    secret = data.draw(st.sampled_from(secrets_list))
    for form in encoded_forms(secret):
        assert not contains_any_form(redactor.scrub_text(f"<{form}>"), secret), form
        assert not contains_any_form(
            redactor.scrub_bytes(f"<{form}>".encode()).decode("utf-8", "replace"), secret), form
