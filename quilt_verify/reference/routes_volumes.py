"""Volume routes (quilt-api.md 5.8): CRUD, single files, archive upload."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from . import archive, volume_files, volume_paths, volumes
from .endpoints import Auth, Call, Reply, Spec
from .errors import invalid

SUCCESS = {"success": True}
FILES_PREFIX_SEGMENTS = 4  # api, volumes, <name>, files
# Volume contents change under this lock (writes, deletes, extraction, volume removal), so
# concurrent requests on the same paths cannot interleave halfway.
_CONTENT_LOCK = threading.Lock()


def _root(call: Call) -> Path:
    """The directory of the tenant's volume named in the path (404 if there is none)."""
    name = call.params["name"]
    with call.tx() as db:
        volumes.row_for(db, call.tenant_id, name)
    return volumes.volume_dir(call.backend.data_dir, call.tenant_id, name)


def _url_segments(call: Call) -> list[str]:
    """The file path of `/api/volumes/<name>/files/<path>`, from the raw request path, so an
    encoded `..` or `/` is seen for what it is (each segment is decoded once)."""
    raw = call.raw_path or quote(f"/api/volumes/{call.params['name']}/files/"
                                 f"{call.params['path']}").encode()
    parts = raw.split(b"/")
    if (len(parts) < 2 + FILES_PREFIX_SEGMENTS or parts[1:3] != [b"api", b"volumes"]
            or parts[4] != b"files"
            or unquote_to_bytes(parts[3]).decode("utf-8", "replace") != call.params["name"]):
        raise invalid("path", "the request path is ambiguous (encoded separators?)")
    segments = volume_paths.from_raw_url(raw, FILES_PREFIX_SEGMENTS)
    if not segments:
        raise invalid("path", "must name a file", None, "/")
    return segments


def list_volumes(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, {"volumes": volumes.list_volumes(db, call.backend.data_dir,
                                                           call.tenant_id)})


def create_volume(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(201, volumes.create(db, call.backend.data_dir, call.tenant_id, call.json(),
                                         call.now()))


def get_volume(call: Call) -> Reply:
    with call.tx() as db:
        row = volumes.row_for(db, call.tenant_id, call.params["name"])
    return Reply(200, volumes.view(row, call.backend.data_dir))


def delete_volume(call: Call) -> Reply:
    with _CONTENT_LOCK, call.tx() as db:
        volumes.delete(db, call.backend.data_dir, call.tenant_id, call.params["name"])
    return Reply(200, SUCCESS)


def upload_file(call: Call) -> Reply:
    data = call.json()
    with _CONTENT_LOCK:
        return Reply(200, volume_files.upload(_root(call), data))


def download_file(call: Call) -> Reply:
    with _CONTENT_LOCK:
        return Reply(200, volume_files.download(_root(call), _url_segments(call)))


def delete_file(call: Call) -> Reply:
    with _CONTENT_LOCK:
        volume_files.remove(_root(call), _url_segments(call))
    return Reply(200, SUCCESS)


def upload_archive(call: Call) -> Reply:
    data = call.json()
    with _CONTENT_LOCK:
        return Reply(200, archive.extract(_root(call), data))


V = "/api/volumes/{name}"
SPECS = [
    Spec("GET", "/api/volumes", list_volumes, Auth.TENANT),
    Spec("POST", "/api/volumes", create_volume, Auth.TENANT),
    Spec("GET", V, get_volume, Auth.TENANT),
    Spec("DELETE", V, delete_volume, Auth.TENANT),
    Spec("POST", V + "/files", upload_file, Auth.TENANT),
    Spec("GET", V + "/files/{path:path}", download_file, Auth.TENANT),
    Spec("DELETE", V + "/files/{path:path}", delete_file, Auth.TENANT),
    Spec("POST", V + "/archive", upload_archive, Auth.TENANT),
]
