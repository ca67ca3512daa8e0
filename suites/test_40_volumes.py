"""Volumes including file push/pull: lifecycle, byte-exact round trips proved by SHA-256,
archive upload with strip_components, and refusal of path traversal in every form.

Uploaded and downloaded bytes are kept as evidence artifacts; their digests stand in the
manifest and in `artifacts/volumes/digests.json`. Ordered: a failed step blocks the rest.
"""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest

from quilt_verify.checks import expect_status, sha256

pytestmark = [pytest.mark.capability("volumes"), pytest.mark.session, pytest.mark.mode("standard")]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "volumes"
REFUSED = (400, 403, 422)


def fixture_sums() -> dict[str, str]:
    sums = {}
    for line in (FIXTURES / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    return sums


def fixture_bytes(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    assert sha256(data) == fixture_sums()[name], f"fixture {name} does not match SHA256SUMS"
    return data


def five_mib() -> bytes:
    return random.Random(20261203).randbytes(5 * 1024 * 1024)


FILE_CASES = {
    "all-byte-values": ("all-bytes.bin", lambda: fixture_bytes("all-bytes.bin")),
    "empty": ("empty.txt", lambda: b""),
    "five-mib": ("big/five-mib.bin", five_mib),
    "nested": ("a/b/c/d/nested.bin", lambda: b"\0nested\0" * 100),
    "space-and-non-ascii": ("dir with space/ünïcødé 日本.txt", lambda: "héllo wörld 日本\n".encode()),
}


def make_tar(members: dict[str, bytes], *, links: dict[str, tuple[str, bytes]] | None = None) -> bytes:
    """A tar.gz; ``links`` maps a member name to (``sym``/``hard``, target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = target.decode()
            tar.addfile(info)
    return buf.getvalue()


def record_pair(recorder, s, entry: dict) -> None:
    """Keep the upload/download digest pairs in the bundle as they are made."""
    s.digests.append(entry)
    recorder.write_json("artifacts/volumes/digests.json", {"volume": s.volume, "files": s.digests})


def test_01_create_volume(quilt, quilt_names, quilt_ledger, session_state, step):
    """Creating a volume MUST return it by name; it MUST then be readable and listed."""
    s = session_state
    s.volume = quilt_names.make("vol")
    step(f"creating volume {s.volume}")
    created = quilt.create_volume(s.volume, labels=quilt_names.labels)
    assert created.get("name") == s.volume, created
    quilt_ledger.track(quilt, "volume", s.volume, name=s.volume)
    assert quilt.get_volume(s.volume).get("name") == s.volume
    assert s.volume in [v.get("name") for v in quilt.list_volumes()]
    s.digests = []


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_02_file_round_trip(quilt, quilt_recorder, session_state, step, case):
    """A file uploaded to a volume MUST download byte-exact: the SHA-256 of the downloaded bytes
    MUST equal that of the uploaded bytes (binary with every byte value, empty, 5 MiB, nested
    paths, names with spaces and non-ASCII characters)."""
    s = session_state
    path, make = FILE_CASES[case]
    data = make()
    step(f"uploading {len(data)} bytes to {path}")
    answer = quilt.upload_file(s.volume, path, data)
    if isinstance(answer, dict) and "size" in answer:
        assert answer["size"] == len(data), f"upload says size {answer['size']}, sent {len(data)}"
    step(f"downloading {path}")
    got = quilt.download_file(s.volume, path)
    up_path, up_digest = quilt_recorder.artifact(f"volumes/{case}.uploaded", data)
    down_path, down_digest = quilt_recorder.artifact(f"volumes/{case}.downloaded", got)
    record_pair(quilt_recorder, s, {"case": case, "path": path, "bytes": len(data),
                      "uploaded": {"artifact": up_path, "sha256": up_digest},
                      "downloaded": {"artifact": down_path, "sha256": down_digest}})
    assert sha256(got) == sha256(data), (
        f"{path}: downloaded {len(got)} bytes with SHA-256 {sha256(got)}, uploaded {len(data)} "
        f"bytes with SHA-256 {sha256(data)}")


def test_03_archive_upload_with_strip_components(quilt, quilt_recorder, session_state, step):
    """After a tar.gz archive is uploaded with `path` and `strip_components` 1, every regular
    member MUST be downloadable under that path, its leading directory stripped, with the
    SHA-256 it had in the archive."""
    s = session_state
    archive = fixture_bytes("sample-archive.tar.gz")
    sums = fixture_sums()
    members = {name.split(":", 1)[1]: digest for name, digest in sums.items()
               if name.startswith("sample-archive.tar.gz:")}
    step("uploading the sample archive to /unpacked with strip_components=1")
    answer = quilt.upload_archive(s.volume, archive, path="/unpacked", strip_components=1)
    if isinstance(answer, dict) and "files_extracted" in answer:
        assert answer["files_extracted"] == len(members), answer
    for member, digest in sorted(members.items()):
        stripped = member.split("/", 1)[1]
        step(f"downloading unpacked/{stripped}")
        got = quilt.download_file(s.volume, f"unpacked/{stripped}")
        art, art_digest = quilt_recorder.artifact(f"volumes/archive/{stripped}.downloaded", got)
        record_pair(quilt_recorder, s, {"case": f"archive:{member}", "path": f"unpacked/{stripped}",
                          "bytes": len(got),
                          "uploaded": {"artifact": "fixtures/volumes/sample-archive.tar.gz",
                                       "sha256": digest},
                          "downloaded": {"artifact": art, "sha256": art_digest}})
        assert sha256(got) == digest, f"unpacked/{stripped}: SHA-256 {sha256(got)} != {digest}"
    step("the stripped top directory itself is not there")
    expect_status(lambda: quilt.download_file(s.volume, "unpacked/bundle/README.txt"), 404)


TRAVERSAL_PATHS = ["../escape.txt", "a/../../escape.txt", "/../../../tmp/escape.txt",
                   "..", "a/b/../../../escape.txt"]
TRAVERSAL_URLS = ["%2e%2e/%2e%2e/etc/passwd", "%2E%2E/escape.txt", "a%2F..%2F..%2Fescape.txt",
                  "..%2f..%2fescape.txt"]
EVIL_ARCHIVES = {
    "dot-dot member": lambda: make_tar({"../escape.txt": b"x"}),
    "absolute member": lambda: make_tar({"/tmp/escape.txt": b"x"}),
    "symlink out": lambda: make_tar({}, links={"link": ("sym", b"/etc")}),
    "symlink dot-dot": lambda: make_tar({}, links={"link": ("sym", b"../../..")}),
    "hardlink out": lambda: make_tar({}, links={"hard": ("hard", b"/etc/passwd")}),
}


def test_04_path_traversal_is_refused(quilt, session_state, step):
    """Every path traversal form MUST be refused (4xx, never a success): `..` in an upload path,
    percent-encoded `..` in a download URL, and archive members that are absolute, contain `..`,
    or are links pointing out of the volume; nothing named by them MUST appear in the volume."""
    s = session_state
    for path in TRAVERSAL_PATHS:
        step(f"uploading to {path!r}")
        expect_status(lambda p=path: quilt.upload_file(s.volume, p, b"escape"), *REFUSED)
    for raw in TRAVERSAL_URLS:
        step(f"downloading files/{raw}")
        expect_status(lambda r=raw: quilt.call("GET", f"/api/volumes/{s.volume}/files/{r}"),
                      *REFUSED, 404)
    for label, build in EVIL_ARCHIVES.items():
        step(f"uploading an archive with a {label}")
        expect_status(lambda b=build: quilt.upload_archive(s.volume, b()), *REFUSED)
    for leftover in ("escape.txt", "link", "hard", "tmp/escape.txt"):
        expect_status(lambda p=leftover: quilt.download_file(s.volume, p), 404, *REFUSED)


def test_05_delete_file_and_volume(quilt, quilt_ledger, session_state, step):
    """A deleted file MUST answer 404; a deleted volume MUST answer 404 and leave the list."""
    s = session_state
    step("deleting a file")
    quilt.delete_file(s.volume, "empty.txt")
    expect_status(lambda: quilt.download_file(s.volume, "empty.txt"), 404)
    step(f"deleting volume {s.volume}")
    quilt.delete_volume(s.volume)
    expect_status(lambda: quilt.get_volume(s.volume), 404)
    quilt_ledger.discard("volume", s.volume)
    assert s.volume not in [v.get("name") for v in quilt.list_volumes()]
