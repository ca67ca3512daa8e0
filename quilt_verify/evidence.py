"""The evidence recorder: redacted exchanges per test, artifacts, the leak scan and the manifest.

Nothing reaches disk before it has been redacted. The recorder is an observer of the client's
event stream; the plugin tells it which test is running.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from quilt_verify.bundle import latency_summary
from quilt_verify.catalogue import match
from quilt_verify.client import Exchange, VariantSeen
from quilt_verify.redaction import Redactor

MANIFEST = "manifest.json"
DOCUMENT = "VERIFICATION.md"
SESSION_SCOPE = "_session"
# Bodies larger than this are kept truncated inline, with the digest and size of the full body.
MAX_INLINE_BODY = 256 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def evidence_name(nodeid: str) -> str:
    """A stable relative path for a test's exchanges: ``exchanges/<module>/<test>.jsonl``."""
    module, sep, rest = nodeid.partition("::")
    if not sep:  # not a test: preflight, cleanup
        module, rest = SESSION_SCOPE, nodeid
    module = Path(module).stem or SESSION_SCOPE
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_") or SESSION_SCOPE
    return f"exchanges/{module}/{name[:150]}.jsonl"


@dataclass(frozen=True)
class LeakFinding:
    path: str
    secret_label: str


class Recorder:
    """Writes redacted evidence into one run folder."""

    def __init__(self, run_dir: Path, redactor: Redactor) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redactor = redactor
        self.current_test: str | None = None
        self.current_step: str | None = None
        self.variants: dict[str, set[str]] = {}
        self.exchange_count = 0
        self.durations: dict[str, list[float]] = {}
        self.echoes: dict[str | None, list[str]] = {}  # per test: responses repeating a secret
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()
        self._seq = 0

    # -- event stream --------------------------------------------------------------------------
    def __call__(self, event: Exchange | VariantSeen) -> None:
        if isinstance(event, VariantSeen):
            with self._lock:
                self.variants.setdefault(event.name, set()).add(event.value)
            return
        self.record_exchange(event)

    def take_echoes(self, nodeid: str | None) -> list[str]:
        """Responses seen during ``nodeid`` that repeated a registered secret (forgotten after)."""
        with self._lock:
            return self.echoes.pop(nodeid, [])

    def begin_test(self, nodeid: str | None) -> None:
        self.current_test = nodeid
        self.current_step = None

    def step(self, text: str) -> None:
        """Narrate what the test is doing; later exchanges carry this step."""
        self.current_step = text
        self._write({"kind": "step", "at": _now(), "text": self.redactor.scrub_text(text)})

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Add a line of the tool's own (e.g. a contract violation) to the current evidence."""
        line = {"kind": kind, "at": _now(), **data}
        self._write(json.loads(self.redactor.scrub_text(json.dumps(line))))

    def evidence_path(self, nodeid: str | None = None) -> str:
        return evidence_name(nodeid or self.current_test or SESSION_SCOPE)

    def record_exchange(self, ex: Exchange) -> None:
        r = self.redactor
        # Harvest secrets from both sides before scrubbing anything, so a token minted in this
        # response is already scrubbed from the URL or any other place it shows up.
        r.harvest_headers(ex.request_headers)
        r.harvest_headers(ex.response_headers)
        request_body = _decode_body(ex.request_body)
        response_body = _decode_body(ex.response_body)
        for body in (request_body, response_body):
            if body.get("json") is not None:
                body["harvested_all"] = r.harvest_json(body["json"])
        if response_body.get("json") is not None and response_body["size"] <= MAX_INLINE_BODY:
            for pointer, label in r.echoes(response_body["json"]):
                with self._lock:
                    self.echoes.setdefault(self.current_test, []).append(
                        f"{ex.method} {r.scrub_text(ex.path)} -> {ex.status}: the response "
                        f"repeats a secret ({label}) at {pointer}, outside any credential field "
                        f"(request_id={ex.request_id})")
        line = {
            "kind": "exchange",
            "test": self.current_test,
            "step": self.current_step,
            "attempt": ex.attempt,
            "request_id": r.scrub_text(ex.request_id),
            "started_at": ex.started_at,
            "duration_ms": round(ex.duration_ms, 3),
            "request": {
                "method": ex.method,
                "url": r.scrub_text(ex.url),
                "path": r.scrub_text(ex.path),
                "headers": r.redact_headers(ex.request_headers),
                "body": _redact_body(r, request_body),
            },
            "response": None if ex.status is None else {
                "status": ex.status,
                "headers": r.redact_headers(ex.response_headers),
                "body": _redact_body(r, response_body),
            },
            "error": r.scrub_text(ex.error) if ex.error else None,
        }
        endpoint = match(ex.method, ex.path)
        if endpoint is not None:
            with self._lock:
                self.durations.setdefault(endpoint.key, []).append(ex.duration_ms)
        self._write(line)

    def _write(self, line: dict[str, Any]) -> None:
        rel = self.evidence_path()
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        # Characters some line splitters treat as line breaks stay escaped: one line per record.
        text = text.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace(
            "\u2029", "\\u2029")
        with self._lock:
            self._seq += 1
            line_text = f'{{"seq":{self._seq},' + text[1:] + "\n"
            if line.get("kind") == "exchange":
                self.exchange_count += 1
            fh = self._files.get(rel)
            if fh is None:
                target = self.run_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fh = target.open("a", encoding="utf-8")
                self._files[rel] = fh
            fh.write(line_text)
            fh.flush()

    # -- other files -----------------------------------------------------------------------------
    def write_json(self, rel: str, data: Any) -> Path:
        """Write one of the run's own JSON files; every registered secret is scrubbed from it.

        Field-name rules are not applied here: these files are the tool's own structure (an
        endpoint key like ``POST /api/clusters/:id/join-tokens`` is not a secret).
        """
        target = self.run_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str)
        target.write_text(self.redactor.scrub_text(text) + "\n", encoding="utf-8")
        return target

    def artifact(self, rel: str, data: bytes) -> tuple[str, str]:
        """Save bytes under ``artifacts/``; return (relative path, SHA-256 of what was written).

        Registered secrets are scrubbed first, so the digest is of the bytes on disk.
        """
        clean = re.sub(r"[^A-Za-z0-9._/-]+", "_", rel).strip("/")
        if ".." in clean.split("/"):
            raise ValueError(f"artifact path {rel!r} leaves the run folder")
        target = self.run_dir / "artifacts" / clean
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self.redactor.scrub_bytes(data)
        target.write_bytes(data)
        return target.relative_to(self.run_dir).as_posix(), hashlib.sha256(data).hexdigest()

    def close_files(self) -> None:
        with self._lock:
            for fh in self._files.values():
                fh.close()
            self._files.clear()

    # -- closing ---------------------------------------------------------------------------------
    def leak_scan(self) -> list[LeakFinding]:
        """Search every file for every registered secret in any encoded form.

        A file with a finding is scrubbed in place (the run still fails: the secret was on disk).
        """
        findings: list[LeakFinding] = []
        for path in _files_under(self.run_dir):
            data = path.read_bytes()
            form = self.redactor.find_in_bytes(data)
            if form is None:
                continue
            label = self.redactor.registry.label_of_form(form)
            findings.append(LeakFinding(path.relative_to(self.run_dir).as_posix(), label))
            path.write_bytes(self.redactor.scrub_bytes(data))
        return findings

    def finish(
        self, *, run_info: dict[str, Any], outcome: str,
        document: Callable[[Path, dict[str, Any]], str] | None = None,
    ) -> tuple[Path, list[LeakFinding]]:
        """Close files, scan for leaks, write the document, then the manifest over every file.

        ``document(run_dir, manifest_draft)`` returns the verification document's text; it sees
        the digests of every other file, and the manifest then covers the document too.
        """
        self.close_files()
        self.write_json("latency.json", latency_summary(self.durations))
        findings = self.leak_scan()
        if findings:
            outcome = "failed"
            self.write_json("leak-scan.json", {
                "result": "leaks found and scrubbed after the fact",
                "findings": [{"path": f.path, "secret": f.secret_label} for f in findings],
            })
        manifest = dict(run_info)
        manifest.update({
            "finished_at": _now(),
            "outcome": outcome,
            "leak_scan": {"values_checked": len(self.redactor.registry),
                          "findings": [f.path for f in findings]},
            "files": manifest_entries(self.run_dir),
        })
        if document is not None:
            text = self.redactor.scrub_text(document(self.run_dir, manifest))
            (self.run_dir / DOCUMENT).write_text(text, encoding="utf-8")
            manifest["files"] = manifest_entries(self.run_dir)
        path = self.run_dir / MANIFEST
        text = json.dumps(manifest, indent=2, sort_keys=True)
        path.write_text(self.redactor.scrub_text(text) + "\n", encoding="utf-8")
        return path, findings


def _files_under(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            yield Path(dirpath) / name


def manifest_entries(run_dir: Path) -> list[dict[str, Any]]:
    """``{path, sha256, bytes}`` for every file in the folder except the manifest itself."""
    entries = []
    for path in _files_under(run_dir):
        rel = path.relative_to(run_dir).as_posix()
        if rel in (MANIFEST, "manifest.sig"):
            continue
        entries.append({"path": rel, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return sorted(entries, key=lambda e: e["path"])


def verify_manifest(run_dir: Path) -> list[str]:
    """Problems found when recomputing the manifest: changed, missing or unlisted files."""
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{MANIFEST}: unreadable ({exc})"]
    listed = {e["path"]: e for e in manifest.get("files", [])}
    actual = {e["path"]: e for e in manifest_entries(run_dir)}
    problems = []
    for rel, entry in sorted(listed.items()):
        if rel not in actual:
            problems.append(f"{rel}: listed in the manifest but missing")
        elif actual[rel]["sha256"] != entry.get("sha256") or actual[rel]["bytes"] != entry.get(
                "bytes"):
            problems.append(f"{rel}: digest does not match the manifest")
    problems += [f"{rel}: present but not in the manifest" for rel in sorted(set(actual) - set(listed))]
    return problems


def _decode_body(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {"size": 0}
    info: dict[str, Any] = {"size": len(raw)}
    try:
        info["json"] = json.loads(raw)
        if len(raw) > MAX_INLINE_BODY:
            info["raw"] = raw
        return info
    except ValueError:
        pass
    info["text"] = raw.decode("utf-8", errors="replace")
    return info


def _redact_body(r: Redactor, body: dict[str, Any]) -> Any:
    if body["size"] == 0:
        return None
    if "raw" in body and body.get("harvested_all"):
        # A large JSON body is kept truncated anyway: scrubbing its text (every sensitive
        # field's value is registered) spares a redacted copy and a second serialization.
        text = r.scrub_text(body["raw"].decode("utf-8", errors="replace"))
    elif "json" in body:
        value = r.redact_json(body["json"])
        text = json.dumps(value, ensure_ascii=False)
        if len(text) <= MAX_INLINE_BODY:
            return value
    else:
        text = r.scrub_text(body["text"])
        if len(text) <= MAX_INLINE_BODY:
            return {"text": text}
    return {
        "truncated": True,
        "bytes": body["size"],
        "sha256_of_redacted": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "head": text[:MAX_INLINE_BODY],
    }
