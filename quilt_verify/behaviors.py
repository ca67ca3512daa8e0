"""Behaviour identity: every check's stable ID and MUST sentence come from the test itself."""

from __future__ import annotations

import re


def behavior_id(capability: str | None, test_name: str) -> str:
    """``kubernetes-session/reconcile_schedules_replicas`` from ``test_07_reconcile_...``.

    The step number is dropped so renumbering a session keeps IDs stable; parameters stay.
    """
    name = re.sub(r"^test_(\d+_)?", "", test_name)
    return f"{capability or 'uncategorized'}/{name}"


def must_sentences(docstring: str | None) -> str:
    """The docstring as one line (it states the behaviour in MUST sentences)."""
    return " ".join((docstring or "").split())
