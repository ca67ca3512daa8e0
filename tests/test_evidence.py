import base64
import json

from quilt_verify.client import Exchange, VariantSeen
from quilt_verify.evidence import Recorder, evidence_name, sha256_file, verify_manifest
from quilt_verify.redaction import MASK, Redactor

NODE_TOKEN = "qnt_abcdefghijklmnopqrstuvwxyz012345"
API_KEY = "quilt_sk_fake-0123456789-abcdefghij"


def exchange(**kw):
    base = dict(method="POST", url="http://t/api/agent/clusters/c/nodes/register",
                path="/api/agent/clusters/c/nodes/register",
                request_headers=[("x-api-key", API_KEY), ("content-type", "application/json")],
                request_body=b'{"name":"n1"}', attempt=1, request_id="rid-1",
                started_at="2026-12-03T00:00:00Z", status=201,
                response_headers=[("content-type", "application/json"), ("x-request-id", "rid-1")],
                response_body=json.dumps({"node": {"id": "n1"}, "node_token": NODE_TOKEN}).encode(),
                duration_ms=1.5)
    base.update(kw)
    return Exchange(**base)


def make_recorder(tmp_path):
    redactor = Redactor()
    redactor.registry.add(API_KEY, "configured api key")
    return Recorder(tmp_path / "run", redactor)


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exchange_is_redacted_before_it_is_written(tmp_path):
    rec = make_recorder(tmp_path)
    rec.begin_test("suites/test_x.py::test_register")
    rec.step("registering a node")
    rec(exchange())
    # the token minted above shows up in a later URL and in free text: both scrubbed
    rec(exchange(url=f"http://t/api/events?token={NODE_TOKEN}", path="/api/events",
                 request_body=None, response_body=f"echo {NODE_TOKEN}".encode(),
                 response_headers=[("content-type", "text/plain")]))
    rec.close_files()
    path = tmp_path / "run" / evidence_name("suites/test_x.py::test_register")
    assert path.name == "test_register.jsonl" and path.parent.name == "test_x"
    raw = path.read_text()
    assert API_KEY not in raw and NODE_TOKEN not in raw
    step, first, second = read_lines(path)
    assert step["kind"] == "step" and step["text"] == "registering a node"
    assert first["request"]["headers"][0] == ["x-api-key", MASK]
    assert first["response"]["body"]["node_token"] == MASK
    assert first["response"]["body"]["node"] == {"id": "n1"}
    assert first["step"] == "registering a node" and first["test"].endswith("test_register")
    assert first["request_id"] == "rid-1" and first["response"]["status"] == 201
    assert second["request"]["url"] == f"http://t/api/events?token={MASK}"
    assert second["response"]["body"] == {"text": f"echo {MASK}"}
    assert [first["seq"], second["seq"]] == [2, 3]


def test_variants_are_collected(tmp_path):
    rec = make_recorder(tmp_path)
    rec(VariantSeen("list:clusters", "wrapped"))
    rec(VariantSeen("list:clusters", "bare"))
    assert rec.variants == {"list:clusters": {"wrapped", "bare"}}


def test_manifest_lists_every_file_with_its_digest(tmp_path):
    rec = make_recorder(tmp_path)
    rec.begin_test("suites/test_x.py::test_a")
    rec(exchange())
    rec.write_json("results.json", {"tests": []})
    manifest_path, leaks = rec.finish(run_info={"run_id": "r1", "target": "http://t",
                                                "started_at": "x"}, outcome="passed")
    assert leaks == []
    manifest = json.loads(manifest_path.read_text())
    assert manifest["run_id"] == "r1" and manifest["outcome"] == "passed"
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(rec.run_dir).as_posix() for p in rec.run_dir.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert set(files) == on_disk
    for rel, entry in files.items():
        assert entry["sha256"] == sha256_file(rec.run_dir / rel)
        assert entry["bytes"] == (rec.run_dir / rel).stat().st_size
    assert verify_manifest(rec.run_dir) == []


def test_verify_manifest_names_changed_added_and_missing_files(tmp_path):
    rec = make_recorder(tmp_path)
    rec.write_json("a.json", {"a": 1})
    rec.write_json("b.json", {"b": 2})
    rec.finish(run_info={"run_id": "r"}, outcome="passed")
    (rec.run_dir / "a.json").write_text('{"a": 2}\n')
    (rec.run_dir / "b.json").unlink()
    (rec.run_dir / "c.json").write_text("{}")
    problems = verify_manifest(rec.run_dir)
    assert problems == ["a.json: digest does not match the manifest",
                        "b.json: listed in the manifest but missing",
                        "c.json: present but not in the manifest"]


def test_leak_scan_finds_raw_url_and_base64_forms_and_fails_the_run(tmp_path):
    rec = make_recorder(tmp_path)
    rec.redactor.registry.add(NODE_TOKEN, "node_token")
    run = rec.run_dir
    (run / "raw.txt").write_text(f"x {API_KEY} y")
    (run / "url.txt").write_text("token=" + NODE_TOKEN.replace("_", "%5F"))
    (run / "b64.txt").write_text(base64.b64encode(b"zz" + NODE_TOKEN.encode()).decode())
    (run / "clean.txt").write_text("nothing to see")
    _, leaks = rec.finish(run_info={"run_id": "r"}, outcome="passed")
    assert sorted(f.path for f in leaks) == ["b64.txt", "raw.txt", "url.txt"]
    assert {f.secret_label for f in leaks} == {"configured api key", "node_token"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"] == "failed"
    assert sorted(manifest["leak_scan"]["findings"]) == ["b64.txt", "raw.txt", "url.txt"]
    # scrubbed in place, and the report names files and labels, never values
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert API_KEY not in text and NODE_TOKEN not in text
    assert verify_manifest(run) == []


def test_large_bodies_are_truncated_and_still_redacted(tmp_path):
    from quilt_verify.evidence import MAX_INLINE_BODY

    rec = make_recorder(tmp_path)
    rec.begin_test("suites/test_x.py::test_big")
    filler = "x" * (MAX_INLINE_BODY + 10)
    long_secret = "qnt_" + "s" * 30
    # one large body whose sensitive values are long (registered, scrubbed from the raw text)
    # and one with a short sensitive value (too short to register: fields are masked instead)
    for token in (long_secret, "abc"):
        body = json.dumps({"node_token": token, "filler": filler, "echo": f"t={token}"}).encode()
        rec(exchange(response_body=body))
    rec.close_files()
    lines = read_lines(tmp_path / "run" / evidence_name("suites/test_x.py::test_big"))
    for line in lines:
        body = line["response"]["body"]
        assert body["truncated"] is True and body["bytes"] > MAX_INLINE_BODY
    assert long_secret not in lines[0]["response"]["body"]["head"]
    assert '"node_token": "[REDACTED]"' in lines[0]["response"]["body"]["head"]
    assert '"abc"' not in lines[1]["response"]["body"]["head"]


def test_a_response_repeating_a_secret_outside_credential_fields_is_flagged(tmp_path):
    rec = make_recorder(tmp_path)
    rec.begin_test("suites/test_x.py::test_echo")
    rec(exchange())  # mints the node token in its own field: fine
    assert rec.take_echoes("suites/test_x.py::test_echo") == []
    body = json.dumps({"success": True, "debug_info": {"seen": [f"token={NODE_TOKEN}"]}})
    rec(exchange(url="http://t/api/agent/clusters/c/nodes/n1/heartbeat",
                 path="/api/agent/clusters/c/nodes/n1/heartbeat", response_body=body.encode(),
                 status=200, request_id="rid-hb"))
    (problem,) = rec.take_echoes("suites/test_x.py::test_echo")
    assert "repeats a secret (field:node_token) at /debug_info/seen/0" in problem
    assert "request_id=rid-hb" in problem and NODE_TOKEN not in problem
    rec.close_files()
    assert NODE_TOKEN not in (tmp_path / "run" / evidence_name(
        "suites/test_x.py::test_echo")).read_text()
