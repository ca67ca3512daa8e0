"""Paths inside a volume, refused unless they provably stay inside it.

A volume path is a list of segments. Rules (400 `VALIDATION_ERROR` otherwise): no `..`
segment, no backslash, no NUL or other control character, each segment at most 255 bytes of
UTF-8, at most 4096 bytes in all; empty and `.` segments are dropped (so `/a//./b` is `/a/b`).

From the URL, the segments are taken from the raw request path (`scope["raw_path"]`) and each
is percent-decoded exactly once as UTF-8: `%2e%2e` is `..` (refused), `%2f` inside a segment is
refused (it would hide a separator), and `%252e` stays the literal text `%2e`.

`resolve` then maps the segments under the volume root and checks the result: no existing
component on the way may be a symlink, and the real path must be inside the real root.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote_to_bytes

from .errors import invalid

SEGMENT_MAX = 255
PATH_MAX = 4096


def _bad(field: str, why: str, received: str | None = None) -> Exception:
    return invalid(field, why, ["a relative path inside the volume, such as /dir/file.txt"],
                   None if received is None else received[:64])


def check_segments(parts: list[str], field: str) -> list[str]:
    segments: list[str] = []
    total = 0
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            raise _bad(field, "must not contain '..' segments", part)
        if "\\" in part:
            raise _bad(field, "must not contain backslashes", part)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
            raise _bad(field, "must not contain NUL or control characters")
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > SEGMENT_MAX:
            raise _bad(field, f"segments must be at most {SEGMENT_MAX} bytes")
        total += size + 1
        segments.append(part)
    if total > PATH_MAX:
        raise _bad(field, f"must be at most {PATH_MAX} bytes")
    return segments


def from_text(text: str, field: str = "path") -> list[str]:
    """Segments of a path given as JSON text (leading `/` optional)."""
    return check_segments(text.split("/"), field)


def from_raw_url(raw_path: bytes, skip: int, field: str = "path") -> list[str]:
    """Segments of the URL path after its first `skip` segments, each decoded once."""
    raw_segments = raw_path.split(b"/")[1 + skip:]
    parts: list[str] = []
    for raw in raw_segments:
        try:
            text = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(field, "must be percent-encoded UTF-8") from None
        if "/" in text:
            raise _bad(field, "must not contain an encoded '/' inside a segment", text)
        parts.append(text)
    return check_segments(parts, field)


def display(segments: list[str]) -> str:
    return "/" + "/".join(segments)


def resolve(root: Path, segments: list[str], field: str = "path") -> Path:
    """The host path of `segments` under `root`, after the symlink and containment checks."""
    real_root = os.path.realpath(root)
    current = Path(real_root)
    for segment in segments:
        current = current / segment
        if current.is_symlink():
            raise _bad(field, "must not pass through a symbolic link", display(segments))
    real = os.path.realpath(current)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise _bad(field, "must stay inside the volume", display(segments))
    return current
