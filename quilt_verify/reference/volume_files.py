"""Single files in a volume: write (byte-exact, parents created), read, delete.

`mode` is an integer: values above 511 are read as octal digits (644 -> 0o644), others as
the number itself (420 -> 0o644); the result must be 0..0o777 (default 0o644). Reads report
the file's permission bits as an integer (0o644 -> 420).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from . import faults, volume_paths
from .errors import invalid, not_found
from .validation import Body, is_int

DEFAULT_MODE = 0o644


def parse_mode(value: Any, field: str = "mode") -> int:
    if value is None:
        return DEFAULT_MODE
    if not is_int(value):
        raise invalid(field, "must be an integer", ["integer such as 420 or 644"],
                      type(value).__name__, status=422)
    if value > 0o777:
        digits = str(value)
        if any(ch not in "01234567" for ch in digits) or int(digits, 8) > 0o777:
            raise invalid(field, "must be a permission mode", ["0..511, or octal digits such as 644"],
                          digits[:16])
        return int(digits, 8)
    if value < 0:
        raise invalid(field, "must be a permission mode", ["0..511, or octal digits such as 644"],
                      str(value)[:16])
    return value


def decode_base64(value: Any, field: str = "content") -> bytes:
    if not isinstance(value, str):
        raise invalid(field, "must be a base64 string", ["base64 string"], type(value).__name__,
                      status=422)
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise invalid(field, "must be valid base64", ["standard base64 with padding"]) from None


def make_parents(root: Path, segments: list[str], field: str = "path") -> None:
    """Create the parent directories of `segments` (each checked: a directory, not a link)."""
    current = root
    for segment in segments[:-1]:
        current = current / segment
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise invalid(field, f"{volume_paths.display(segments)}: a parent is not a directory")
        current.mkdir(exist_ok=True)


def write_bytes(target: Path, content: bytes, mode: int) -> None:
    """Replace `target` with exactly `content` (never following a link)."""
    if target.is_dir() and not target.is_symlink():
        raise invalid("path", "is a directory")
    try:
        target.unlink()  # a read-only file is replaced too
    except FileNotFoundError:
        pass
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
        os.fchmod(f.fileno(), mode)


def upload(root: Path, data: Any) -> dict[str, Any]:
    body = Body(data)
    text = body.string("path", required=True, max_len=volume_paths.PATH_MAX, controls=True)
    segments = volume_paths.from_text(text or "")
    if not segments:
        raise invalid("path", "must name a file", None, text)
    content = decode_base64(body.raw("content", required=True))
    mode = parse_mode(body.raw("mode"))
    volume_paths.resolve(root, segments)
    make_parents(root, segments)
    target = volume_paths.resolve(root, segments)
    write_bytes(target, content, mode)
    return {"success": True, "path": volume_paths.display(segments), "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest()}


def _read(path: Path, mode: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except PermissionError:  # a file stored without owner read (when not running as root)
        os.chmod(path, mode | stat.S_IRUSR, follow_symlinks=False)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        finally:
            os.chmod(path, mode, follow_symlinks=False)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def download(root: Path, segments: list[str]) -> dict[str, Any]:
    target = volume_paths.resolve(root, segments)
    shown = volume_paths.display(segments)
    try:
        info = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        raise not_found("file", shown) from None
    if stat.S_ISDIR(info.st_mode):
        raise invalid("path", "is a directory", ["a file path"], shown)
    if not stat.S_ISREG(info.st_mode):
        raise invalid("path", "is not a regular file", ["a file path"], shown)
    content = _read(target, stat.S_IMODE(info.st_mode))
    if faults.on("download-byte-flipped") and content:
        content = bytes([content[0] ^ 0x01]) + content[1:]
    return {"path": shown, "content": base64.b64encode(content).decode("ascii"),
            "size": len(content), "mode": stat.S_IMODE(info.st_mode),
            "sha256": hashlib.sha256(content).hexdigest()}


def remove(root: Path, segments: list[str]) -> None:
    target = volume_paths.resolve(root, segments)
    shown = volume_paths.display(segments)
    try:
        info = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        raise not_found("file", shown) from None
    if stat.S_ISDIR(info.st_mode):
        raise invalid("path", "is a directory", ["a file path"], shown)
    target.unlink()
