"""API key management: create (secret shown once), list (never the secret), authenticate with
the new key, delete (the key stops working).

Ordered: a failed step blocks the rest of the session.
"""

from __future__ import annotations

import json

import pytest

from quilt_verify.checks import expect_error_body, expect_status
from quilt_verify.config import Secret

pytestmark = [pytest.mark.capability("api-keys"), pytest.mark.session, pytest.mark.mode("standard")]


def key_ids(quilt) -> list[str]:
    return [str(k.get("id")) for k in quilt.list_api_keys()]


def test_01_create_returns_the_secret_once(quilt, quilt_names, quilt_ledger, register_secret,
                                           session_state, step):
    """Creating an API key MUST return its id and the secret key value."""
    s = session_state
    name = quilt_names.make("key")
    step(f"creating API key {name}")
    created = quilt.create_api_key(name)
    secret = created.get("key") or created.get("api_key") or created.get("secret")
    assert isinstance(secret, str) and len(secret) >= 16, "create returned no usable key"
    register_secret(secret, "created api key")
    assert created.get("id"), "create returned no key id"
    s.key_id, s.secret, s.name = str(created["id"]), secret, name
    quilt_ledger.track(quilt, "api_key", s.key_id, name=name)


def test_02_list_never_shows_the_secret(quilt, session_state, step):
    """The key list MUST include the new key and MUST NOT contain any full secret: at most a
    prefix of it."""
    s = session_state
    step("listing API keys")
    keys = quilt.list_api_keys()
    mine = [k for k in keys if str(k.get("id")) == s.key_id]
    assert mine, f"key {s.key_id} is not listed"
    assert s.secret not in json.dumps(keys), "the key list contains the full secret"
    prefix = mine[0].get("prefix")
    if prefix:
        assert s.secret.startswith(prefix) and len(prefix) < len(s.secret) // 2, (
            "the listed prefix is not a short prefix of the key")


def test_03_new_key_authenticates(quilt, session_state, step):
    """A newly created key MUST authenticate tenant requests."""
    s = session_state
    step("listing clusters with the new key")
    as_new = quilt.with_credentials(api_key=Secret(s.secret))
    assert isinstance(as_new.list_clusters(), list)


def test_04_deleted_key_is_refused(quilt, quilt_ledger, session_state, step):
    """After an API key is deleted it MUST be gone from the list and requests with it MUST get
    401."""
    s = session_state
    step(f"deleting API key {s.key_id}")
    quilt.delete_api_key(s.key_id)
    quilt_ledger.discard("api_key", s.key_id)
    assert s.key_id not in key_ids(quilt)
    step("using the deleted key")
    as_old = quilt.with_credentials(api_key=Secret(s.secret))
    expect_error_body(expect_status(as_old.list_clusters, 401))
    step("deleting it again")
    expect_status(lambda: quilt.delete_api_key(s.key_id), 404)
