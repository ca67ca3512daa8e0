"""Volumes: CRUD, byte-exact file round trips, modes, and archive upload."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant, assert_error


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def url_path(path: str) -> str:
    return "/".join(quote(segment, safe="") for segment in path.strip("/").split("/"))


@pytest.fixture
def volume(api: Tenant, unique: str) -> Iterator[dict[str, Any]]:
    created = api.ok(api.post("/api/volumes", json={"name": f"vol-{unique}",
                                                   "labels": {"team": "qa"}}), 201)
    yield created
    api.delete(f"/api/volumes/{created['name']}")


def upload(api: Tenant, volume: str, path: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return api.ok(api.post(f"/api/volumes/{volume}/files",
                           json={"path": path, "content": b64(data), **extra}))


def download(api: Tenant, volume: str, path: str) -> dict[str, Any]:
    return api.ok(api.get(f"/api/volumes/{volume}/files/{url_path(path)}"))


def test_volume_crud(api: Tenant, other: Tenant, unique: str) -> None:
    name = f"crud-{unique}"
    created = api.ok(api.post("/api/volumes", json={"name": name, "driver": "local",
                                                   "labels": {"a": "b"}}), 201)
    assert set(created) == {"name", "driver", "labels", "status", "mount_point", "created_at",
                            "size_bytes"}
    assert (created["name"], created["driver"], created["labels"], created["status"],
            created["size_bytes"]) == (name, "local", {"a": "b"}, "active", 0)
    assert isinstance(created["created_at"], int) and Path(created["mount_point"]).is_dir()
    assert api.ok(api.get(f"/api/volumes/{name}")) == created
    assert name in [v["name"] for v in api.ok(api.get("/api/volumes"))["volumes"]]
    assert_error(api.post("/api/volumes", json={"name": name}), 409, "CONFLICT", "name")
    # Names are per tenant; the other tenant sees none of ours.
    assert_error(other.get(f"/api/volumes/{name}"), 404, "NOT_FOUND")
    assert_error(other.get(f"/api/volumes/{name}/files/x"), 404, "NOT_FOUND")
    assert name not in [v["name"] for v in other.ok(other.get("/api/volumes"))["volumes"]]
    theirs = other.ok(other.post("/api/volumes", json={"name": name}), 201)
    assert theirs["mount_point"] != created["mount_point"]
    upload(api, name, "/f.bin", b"12345")
    assert api.ok(api.get(f"/api/volumes/{name}"))["size_bytes"] == 5
    assert api.ok(api.delete(f"/api/volumes/{name}")) == {"success": True}
    assert not Path(created["mount_point"]).exists()
    assert_error(api.get(f"/api/volumes/{name}"), 404, "NOT_FOUND")
    assert_error(api.delete(f"/api/volumes/{name}"), 404, "NOT_FOUND")
    other.ok(other.get(f"/api/volumes/{name}"))
    other.ok(other.delete(f"/api/volumes/{name}"))


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "name"), ({"name": ""}, 400, "name"), ({"name": "-lead"}, 400, "name"),
    ({"name": "a/b"}, 400, "name"), ({"name": "x" * 64}, 400, "name"),
    ({"name": "ok", "driver": "nfs"}, 400, "driver"), ({"name": "ok", "labels": {"a": 1}}, 422, "labels.a"),
])
def test_volume_validation(api: Tenant, body: dict, status: int, field: str) -> None:
    assert_error(api.post("/api/volumes", json=body), status, "VALIDATION_ERROR", field)


def test_byte_exact_round_trips(api: Tenant, volume: dict, ref_server: ReferenceServer) -> None:
    name = volume["name"]
    cases = {
        "/all-bytes.bin": bytes(range(256)) * 4,
        "/empty.txt": b"",
        "/zeros.bin": b"\x00" * 1000,
        "/big/five-mib.bin": os.urandom(5 * 1024 * 1024),
        "/a/b/c/d/nested.txt": b"deep\n",
        "/dir with spaces/file name.txt": b"spaces",
        "/ünï/日本 語.txt": "non-ascii ✓".encode(),
        "/%2e%2e/literal.txt": b"percent text is just text",
    }
    for path, data in cases.items():
        written = upload(api, name, path, data)
        assert written == {"success": True, "path": path, "size": len(data), "sha256": sha(data)}
        got = download(api, name, path)
        assert set(got) == {"path", "content", "size", "mode", "sha256"}
        assert (got["path"], got["size"], got["sha256"], got["mode"]) == (
            path, len(data), sha(data), 0o644)
        assert base64.b64decode(got["content"]) == data
        on_disk = Path(volume["mount_point"]).joinpath(*path.strip("/").split("/"))
        assert on_disk.read_bytes() == data
    assert api.ok(api.get(f"/api/volumes/{name}"))["size_bytes"] == sum(map(len, cases.values()))
    # The double-encoded form is decoded once: `%252e%252e` names the literal `%2e%2e` dir.
    got = api.ok(api.get(f"/api/volumes/{name}/files/%252e%252e/literal.txt"))
    assert base64.b64decode(got["content"]) == b"percent text is just text"


def test_paths_are_normalized_and_overwrites_replace(api: Tenant, volume: dict) -> None:
    name = volume["name"]
    assert upload(api, name, "x//y/./z.txt", b"one")["path"] == "/x/y/z.txt"
    assert upload(api, name, "/x/y/z.txt", b"two!")["size"] == 4
    assert base64.b64decode(download(api, name, "/x/y/z.txt")["content"]) == b"two!"
    assert_error(api.get(f"/api/volumes/{name}/files/x/y"), 400, "VALIDATION_ERROR")
    assert_error(api.get(f"/api/volumes/{name}/files/x/missing.txt"), 404, "NOT_FOUND")
    assert_error(api.get(f"/api/volumes/{name}/files/x/y/z.txt/deeper"), 404, "NOT_FOUND")
    assert_error(upload_raw(api, name, {"path": "/x/y", "content": ""}), 400, "VALIDATION_ERROR")
    assert_error(upload_raw(api, name, {"path": "/x/y/z.txt/sub", "content": ""}), 400,
                 "VALIDATION_ERROR")
    assert api.ok(api.delete(f"/api/volumes/{name}/files/x/y/z.txt")) == {"success": True}
    assert_error(api.get(f"/api/volumes/{name}/files/x/y/z.txt"), 404, "NOT_FOUND")
    assert_error(api.delete(f"/api/volumes/{name}/files/x/y/z.txt"), 404, "NOT_FOUND")
    assert_error(api.delete(f"/api/volumes/{name}/files/x"), 400, "VALIDATION_ERROR")


def upload_raw(api: Tenant, volume: str, body: Any) -> Any:
    return api.post(f"/api/volumes/{volume}/files", json=body)


@pytest.mark.parametrize("mode,expected", [(420, 0o644), (644, 0o644), (0o755, 0o755),
                                           (755, 0o755), (600, 0o600), (0, 0), (511, 0o777)])
def test_file_modes(api: Tenant, volume: dict, mode: int, expected: int) -> None:
    upload(api, volume["name"], "/m.sh", b"#!/bin/sh\n", mode=mode)
    assert download(api, volume["name"], "/m.sh")["mode"] == expected
    on_disk = Path(volume["mount_point"]) / "m.sh"
    assert on_disk.stat().st_mode & 0o777 == expected


@pytest.mark.parametrize("body,status,field", [
    ({"path": "/a", "content": "abc"}, 400, "content"),           # bad padding
    ({"path": "/a", "content": "!!!!"}, 400, "content"),
    ({"path": "/a", "content": "YWJj\nZA=="}, 400, "content"),     # embedded newline
    ({"path": "/a", "content": "é"}, 400, "content"),
    ({"path": "/a", "content": 5}, 422, "content"),
    ({"path": "/a"}, 422, "content"),
    ({"content": "YQ=="}, 422, "path"),
    ({"path": "", "content": "YQ=="}, 400, "path"),
    ({"path": "/", "content": "YQ=="}, 400, "path"),
    ({"path": "/a", "content": "YQ==", "mode": 999}, 400, "mode"),
    ({"path": "/a", "content": "YQ==", "mode": 1000}, 400, "mode"),
    ({"path": "/a", "content": "YQ==", "mode": -1}, 400, "mode"),
    ({"path": "/a", "content": "YQ==", "mode": "644"}, 422, "mode"),
])
def test_upload_validation(api: Tenant, volume: dict, body: dict, status: int,
                           field: str) -> None:
    assert_error(upload_raw(api, volume["name"], body), status, "VALIDATION_ERROR", field)
    assert not any(Path(volume["mount_point"]).iterdir())


def test_body_limit_is_raised_only_for_uploads(api: Tenant) -> None:
    big = {"name": "x", "labels": {"pad": "a" * (9 * 1024 * 1024)}}
    assert_error(api.post("/api/containers", json=big), 413, "PAYLOAD_TOO_LARGE")
    assert_error(api.post("/api/volumes", json=big), 413, "PAYLOAD_TOO_LARGE")


def make_tar(members: list[tuple[str, bytes | None, int]], compress: bool = True) -> bytes:
    """A tar(.gz) of (name, data or None for a directory, mode)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if compress else "w") as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_archive_upload_with_strip_components(api: Tenant, volume: dict) -> None:
    files = {
        "bin/run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
        "data/all.bin": (bytes(range(256)), 0o644),
        "data/empty.txt": (b"", 0o600),
        "ü dir/日本.txt": ("unicode ✓".encode(), 0o644),
    }
    members: list[tuple[str, bytes | None, int]] = [("pkg-1.0", None, 0o755),
                                                     ("pkg-1.0/bin", None, 0o755),
                                                     ("pkg-1.0/logs", None, 0o755),
                                                     ("TOPLEVEL", b"skipped", 0o644)]
    members += [(f"pkg-1.0/{path}", data, mode) for path, (data, mode) in files.items()]
    body = {"content": b64(make_tar(members)), "path": "/app", "strip_components": 1}
    result = api.ok(api.post(f"/api/volumes/{volume['name']}/archive", json=body))
    assert result == {"success": True, "files_extracted": len(files)}
    for path, (data, mode) in files.items():
        got = download(api, volume["name"], f"/app/{path}")
        assert (got["sha256"], got["size"], got["mode"]) == (sha(data), len(data), mode)
        assert base64.b64decode(got["content"]) == data
    root = Path(volume["mount_point"])
    assert (root / "app" / "logs").is_dir()  # directories are created
    assert not (root / "app" / "TOPLEVEL").exists() and not (root / "TOPLEVEL").exists()
    # Defaults: path "/" and no stripping; a plain (uncompressed) tar works too.
    plain = make_tar([("top.txt", b"top", 0o644)], compress=False)
    assert api.ok(api.post(f"/api/volumes/{volume['name']}/archive",
                           json={"content": b64(plain)}))["files_extracted"] == 1
    assert base64.b64decode(download(api, volume["name"], "/top.txt")["content"]) == b"top"


@pytest.mark.parametrize("body,status,field", [
    ({"content": b64(b"not a tar at all")}, 400, "content"),
    ({"content": b64(b"\x1f\x8b\x08\x00garbage")}, 400, "content"),
    ({"content": "***"}, 400, "content"),
    ({}, 422, "content"),
    ({"content": "", "strip_components": 33}, 400, "strip_components"),
    ({"content": "", "strip_components": -1}, 400, "strip_components"),
    ({"content": b64(make_tar([("a", b"a", 0o644)])), "path": "/../x"}, 400, "path"),
])
def test_archive_validation(api: Tenant, volume: dict, body: dict, status: int,
                            field: str) -> None:
    assert_error(api.post(f"/api/volumes/{volume['name']}/archive", json=body), status,
                 "VALIDATION_ERROR", field)
    assert not any(Path(volume["mount_point"]).iterdir())
