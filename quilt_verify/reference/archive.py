"""Archive upload into a volume: a base64 tar (normally gzip-compressed), never trusted.

Every member is checked before anything is written; one bad member refuses the whole archive
(400, nothing written). Refused: names that are absolute or contain `..` or a backslash (before
or after `strip_components`), symbolic and hard links, devices, FIFOs and other special
members, paths that would leave the volume or pass through a symlink, a member that is both a
file and a directory, more than `MAX_MEMBERS` members or `MAX_TOTAL_BYTES` of content. Members
whose path is empty after stripping are skipped. Directories are created; regular files are
written byte-exact with their permission bits and counted in `files_extracted`.
"""

from __future__ import annotations

import io
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import faults, volume_files, volume_paths
from .errors import ApiError, invalid
from .validation import Body

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
STRIP_MAX = 32


@dataclass(frozen=True)
class Entry:
    member: tarfile.TarInfo
    segments: list[str]


def refuse(member: str, why: str) -> ApiError:
    return invalid("content", f"archive member {member[:200]!r} {why}; nothing was extracted",
                   None, member[:64])


def plan(archive: tarfile.TarFile, root: Path, base: list[str], strip: int) -> list[Entry]:
    entries: list[Entry] = []
    total = 0
    members = archive.getmembers()
    if len(members) > MAX_MEMBERS:
        raise invalid("content", f"archive has more than {MAX_MEMBERS} members")
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for member in members:
        name = member.name
        if name.startswith("/") or "\\" in name:
            raise refuse(name, "is absolute or contains a backslash")
        parts = name.split("/")
        if ".." in parts:
            if faults.on("archive-accepts-dotdot"):
                continue
            raise refuse(name, "contains '..'")
        if member.issym() or member.islnk():
            raise refuse(name, "is a link (links are not extracted)")
        if not (member.isreg() or member.isdir()):
            raise refuse(name, "is a device, FIFO or other special file")
        kept = [p for p in parts if p not in ("", ".")][strip:]
        if not kept:
            continue
        try:
            segments = volume_paths.check_segments(base + kept, "content")
            volume_paths.resolve(root, segments, "content")
        except ApiError:
            raise refuse(name, "would leave the volume or has an invalid name") from None
        key = tuple(segments)
        parents = {key[:i] for i in range(1, len(key))}
        if (member.isreg() and key in dirs) or (member.isdir() and key in files) or parents & files:
            raise refuse(name, "is both a file and a directory")
        (files if member.isreg() else dirs).add(key)
        dirs.update(parents)
        total += member.size if member.isreg() else 0
        if total > MAX_TOTAL_BYTES:
            raise invalid("content", f"archive content exceeds {MAX_TOTAL_BYTES} bytes")
        entries.append(Entry(member, segments))
    for key in files:  # what is already in the volume must not contradict the archive
        _check_existing(root, list(key), want_dir=False)
    for key in dirs:
        _check_existing(root, list(key), want_dir=True)
    return entries


def _check_existing(root: Path, segments: list[str], want_dir: bool) -> None:
    path = root.joinpath(*segments)
    if path.is_symlink():
        raise refuse(volume_paths.display(segments), "would pass through a symbolic link")
    if path.exists() and path.is_dir() != want_dir:
        raise refuse(volume_paths.display(segments), "conflicts with an existing "
                     + ("file" if want_dir else "directory"))


def extract(root: Path, data: Any) -> dict[str, Any]:
    body = Body(data)
    content = volume_files.decode_base64(body.raw("content", required=True))
    base_text = body.string("path", max_len=volume_paths.PATH_MAX, allow_empty=True,
                            controls=True) or "/"
    base = volume_paths.from_text(base_text)
    strip = body.integer("strip_components", 0, STRIP_MAX) or 0
    if faults.on("archive-ignores-strip-components"):
        strip = 0
    try:
        archive = tarfile.open(fileobj=io.BytesIO(content), mode="r:*")
        entries = plan(archive, root, base, strip)  # reads every header: all errors surface
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise invalid("content", "must be a valid (gzip-compressed) tar archive", ["tar.gz"],
                      type(exc).__name__) from None
    count = 0
    with archive:
        for entry in entries:
            target = volume_paths.resolve(root, entry.segments, "content")
            if entry.member.isdir():
                volume_files.make_parents(root, entry.segments + ["-"], "content")
                continue
            volume_files.make_parents(root, entry.segments, "content")
            source = archive.extractfile(entry.member)
            assert source is not None
            with source:
                volume_files.write_bytes(target, source.read(), stat.S_IMODE(entry.member.mode))
            count += 1
    return {"success": True, "files_extracted": count}
