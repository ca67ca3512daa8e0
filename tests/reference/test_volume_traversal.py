"""Path traversal is refused everywhere with 400, and nothing is written (or read, or
deleted) outside the volume. A sentinel directory next to the volume root proves it."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant, assert_error, raw_request

SECRET = b"sentinel content"


class Setup:
    def __init__(self, api: Tenant, key: str, volume: dict[str, Any]) -> None:
        self.api, self.key, self.volume = api, key, volume
        self.name = volume["name"]
        self.root = Path(volume["mount_point"])
        self.sentinel = self.root.parent / f"sentinel-{uuid.uuid4().hex[:8]}"
        self.sentinel.mkdir()
        (self.sentinel / "keep.txt").write_bytes(SECRET)
        self.watched = self.root.parent.parent.parent  # <data>/volumes/.. = the data dir
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the data dir outside this volume, with its content."""
        seen: dict[str, bytes] = {}
        for directory, _, files in os.walk(self.watched):
            if Path(directory).is_relative_to(self.root) or "containers" in Path(directory).parts:
                continue
            for name in files:
                path = Path(directory) / name
                seen[str(path)] = path.read_bytes() if not path.is_symlink() else b"<link>"
        return seen

    def assert_untouched(self) -> None:
        assert self.snapshot() == self.before
        assert (self.sentinel / "keep.txt").read_bytes() == SECRET
        escaped = [p for p in self.watched.parent.rglob("pwned*")]
        assert escaped == []


@pytest.fixture
def setup(api: Tenant, ref_keys: dict[str, str], unique: str) -> Iterator[Setup]:
    volume = api.ok(api.post("/api/volumes", json={"name": f"trav-{unique}"}), 201)
    result = Setup(api, ref_keys["main"], volume)
    yield result
    api.delete(f"/api/volumes/{volume['name']}")


JSON_PATHS = ["../pwned", "a/../../pwned", "/../pwned", "..", "a/..", "./../pwned",
              "..\\pwned", "a\\..\\..\\pwned", "a\u0000b/pwned", "/a/../../../../../../tmp/pwned",
              "../" + "x" * 10 + "/pwned", "a/\n/pwned"]


@pytest.mark.parametrize("path", JSON_PATHS)
def test_json_paths_that_escape_are_refused(setup: Setup, path: str) -> None:
    response = setup.api.post(f"/api/volumes/{setup.name}/files",
                              json={"path": path.replace("pwned", f"pwned-{uuid.uuid4().hex}"),
                                    "content": base64.b64encode(b"x").decode()})
    assert_error(response, 400, "VALIDATION_ERROR", "path")
    setup.assert_untouched()
    assert not any(setup.root.iterdir())


def url_forms(sentinel: str) -> list[str]:
    target = f"{sentinel}/keep.txt"
    return [
        f"../{target}", f"../../{sentinel}/keep.txt", f"a/../../{target}",
        f"%2e%2e/{target}", f"%2E%2E/{target}", f"%2e%2E/%2e%2e/{target}",
        f"..%2f{sentinel}%2fkeep.txt", f"%2e%2e%2f{sentinel}%2fkeep.txt",
        f"a%2f..%2f..%2f{sentinel}%2fkeep.txt",
        f"..%5c{sentinel}%5ckeep.txt", f"%00/{target}", f"a%00/../{target}",
        f"%ff%fe/{target}",
    ]


def test_url_paths_that_escape_are_refused(setup: Setup) -> None:
    prefix = f"/api/volumes/{setup.name}/files/"
    for form in url_forms(setup.sentinel.name):
        for method in ("GET", "DELETE"):
            status, body = raw_request(setup.api.url, method, prefix + form, setup.key)
            assert status == 400, (method, form, body)
            assert body["error_code"] == "VALIDATION_ERROR"
            assert "content" not in body
    # An encoded separator before `files` cannot reroute the request either.
    status, _ = raw_request(setup.api.url, "GET",
                            f"/api/volumes/{setup.name}%2ffiles/../{setup.sentinel.name}/keep.txt",
                            setup.key)
    assert status in (400, 404)
    setup.assert_untouched()


def test_double_encoding_is_decoded_once(setup: Setup) -> None:
    prefix = f"/api/volumes/{setup.name}/files/"
    status, body = raw_request(setup.api.url, "GET",
                               prefix + f"%252e%252e/{setup.sentinel.name}/keep.txt", setup.key)
    assert status == 404 and body["error_code"] == "NOT_FOUND"  # a literal `%2e%2e` dir


def test_symlinks_inside_the_volume_are_not_followed(setup: Setup) -> None:
    (setup.root / "link").symlink_to(setup.sentinel, target_is_directory=True)
    (setup.root / "file-link").symlink_to(setup.sentinel / "keep.txt")
    setup.before = setup.snapshot()
    api, name = setup.api, setup.name
    for path in ("link/pwned.txt", "link/keep.txt", "file-link"):
        response = api.post(f"/api/volumes/{name}/files",
                            json={"path": path, "content": base64.b64encode(b"x").decode()})
        assert_error(response, 400, "VALIDATION_ERROR", "path")
    for path in ("link/keep.txt", "file-link"):
        assert_error(api.get(f"/api/volumes/{name}/files/{path}"), 400, "VALIDATION_ERROR")
        assert_error(api.delete(f"/api/volumes/{name}/files/{path}"), 400, "VALIDATION_ERROR")
    archive = tar_of([member("link/pwned.txt", b"x")])
    assert_error(api.post(f"/api/volumes/{name}/archive", json={"content": archive}), 400,
                 "VALIDATION_ERROR")
    archive = tar_of([member("pwned.txt", b"x")])
    assert_error(api.post(f"/api/volumes/{name}/archive",
                          json={"content": archive, "path": "/link"}), 400, "VALIDATION_ERROR")
    setup.assert_untouched()


def member(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE,
           link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    if data is not None:
        info.size = len(data)
    return info, data


def tar_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return base64.b64encode(out.getvalue()).decode()


def bad_archives(sentinel: str) -> dict[str, list[tuple[tarfile.TarInfo, bytes | None]]]:
    ok = member("good/ok.txt", b"fine")
    return {
        "dotdot": [ok, member("../pwned-1", b"x")],
        "dotdot-inside": [ok, member(f"a/../../{sentinel}/pwned-2", b"x")],
        "dotdot-stripped-away": [ok, member("../x/pwned-3", b"x")],
        "absolute": [ok, member("/tmp/pwned-4", b"x")],
        "backslash": [ok, member("a\\..\\pwned-5", b"x")],
        "symlink": [ok, member("good/pwned-6", kind=tarfile.SYMTYPE, link=f"../../{sentinel}")],
        "symlink-inside": [ok, member("good/pwned-7", kind=tarfile.SYMTYPE, link="ok.txt")],
        "hardlink": [ok, member("good/pwned-8", kind=tarfile.LNKTYPE, link="good/ok.txt")],
        "fifo": [ok, member("good/pwned-9", kind=tarfile.FIFOTYPE)],
        "chardev": [ok, member("good/pwned-10", kind=tarfile.CHRTYPE)],
        "blockdev": [ok, member("good/pwned-11", kind=tarfile.BLKTYPE)],
        "file-and-dir": [ok, member("good/ok.txt/pwned-12", b"x")],
    }


@pytest.mark.parametrize("case", list(bad_archives("s")))
def test_bad_archives_are_refused_whole(setup: Setup, case: str) -> None:
    members = bad_archives(setup.sentinel.name)[case]
    body = {"content": tar_of(members), "strip_components": 1 if case == "dotdot-stripped-away" else 0}
    response = setup.api.post(f"/api/volumes/{setup.name}/archive", json=body)
    assert_error(response, 400, "VALIDATION_ERROR", "content")
    assert not any(setup.root.iterdir()), "nothing may be written, not even the good member"
    setup.assert_untouched()


def test_nothing_escapes_through_a_destination_path(setup: Setup,
                                                    ref_server: ReferenceServer) -> None:
    archive = tar_of([member("pwned.txt", b"x")])
    for path in ("..", "../x", "/a/../..", "a\\b"):
        response = setup.api.post(f"/api/volumes/{setup.name}/archive",
                                  json={"content": archive, "path": path})
        assert_error(response, 400, "VALIDATION_ERROR", "path")
    setup.assert_untouched()
    assert json.dumps(setup.volume)  # the fixture volume is still there
