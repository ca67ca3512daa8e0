"""Named checks the suites share. Each raises an AssertionError saying what was expected, what
was received, and the request id where there is one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from quilt_verify.errors import QuiltAPIError, QuiltError, QuiltProtocolError


def expect_status(call: Callable[[], Any], *statuses: int) -> QuiltAPIError:
    """The call MUST fail with one of ``statuses``; return the error for further checks."""
    wanted = "/".join(map(str, statuses))
    try:
        result = call()
    except QuiltAPIError as exc:
        assert exc.status in statuses, (
            f"expected HTTP {wanted}, got {exc.status} {exc.error_code or ''} "
            f"(request_id={exc.request_id})")
        return exc
    raise AssertionError(f"expected HTTP {wanted}, the call succeeded: {result!r}"[:500])


def expect_error_body(exc: QuiltAPIError) -> None:
    """An error response MUST carry a JSON body with an ``error`` (or ``message``) string."""
    body = exc.body
    assert isinstance(body, dict), (
        f"{exc.method} {exc.path} -> {exc.status} has no JSON error body "
        f"(request_id={exc.request_id})")
    text = body.get("error", body.get("message"))
    assert isinstance(text, str) and text, (
        f"{exc.method} {exc.path} -> {exc.status} error body has no 'error' or 'message' "
        f"string: {sorted(body)} (request_id={exc.request_id})")


class Findings:
    """The problems of a table-driven check, collected so one failure names every offender.

    ``refused(label, call, 401)`` runs one bad request; anything but a refusal with one of the
    statuses and a JSON error body is noted (with the request id). :meth:`assert_none` fails
    with every note, one per line, and a closing summary line.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked = 0

    def note(self, problem: str) -> None:
        self.problems.append(problem)

    def refused(self, label: str, call: Callable[[], Any], *statuses: int,
                error_body: bool = True,
                on_accepted: Callable[[Any], Any] | None = None) -> QuiltAPIError | None:
        """``call`` MUST fail with one of ``statuses`` (and an error body); ``on_accepted``
        undoes what an accepted request created."""
        self.checked += 1
        wanted = "/".join(map(str, statuses))
        try:
            result = call()
        except QuiltAPIError as exc:
            if exc.status not in statuses:
                self.note(f"{label}: expected HTTP {wanted}, got {exc.status} "
                          f"{exc.error_code or ''}".rstrip() + f" (request_id={exc.request_id})")
            elif error_body:
                try:
                    expect_error_body(exc)
                except AssertionError as problem:
                    self.note(f"{label}: {problem}")
            return exc
        except QuiltProtocolError as exc:  # a 2xx the client could not even use
            self.note(f"{label}: expected HTTP {wanted}, the request was accepted with an answer "
                      f"the client could not use: {exc.problem}")
            return None
        except QuiltError as exc:
            self.note(f"{label}: expected HTTP {wanted}, got no answer: {exc}")
            return None
        self.note(f"{label}: expected HTTP {wanted}, the request was accepted")
        if on_accepted is not None:
            try:
                on_accepted(result)
            except (QuiltError, LookupError, TypeError, AttributeError):
                pass  # best effort: the answer did not even carry what undoing it needs
        return None

    def assert_none(self, what: str) -> None:
        """Fail with every problem, one per line, then a summary line (the last line)."""
        if self.problems:
            raise AssertionError("\n".join(self.problems) + (
                f"\n{len(self.problems)} problem(s) in {self.checked} {what}"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_number(obj: Any, *needles: str) -> float | None:
    """The first numeric value whose key contains one of ``needles`` (any depth)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and any(
                    n in str(key).lower() for n in needles):
                return float(value)
        for value in obj.values():
            found = find_number(value, *needles)
            if found is not None:
                return found
    return None
