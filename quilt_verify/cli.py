"""The ``quilt-verify`` command. ``run`` wraps pytest; ``serve`` runs the reference backend.

Exit codes: 0 every check passed; 1 a conformance check failed; 2 usage or configuration
error; 3 target unreachable or authentication refused (decided before the suites start).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from quilt_verify import __version__
from quilt_verify import config as qconfig
from quilt_verify.behaviors import behavior_id, must_sentences
from quilt_verify.bundle import Bundle, BundleError
from quilt_verify.diff import compare
from quilt_verify.diff import render as render_diff
from quilt_verify.document import render
from quilt_verify.evidence import DOCUMENT, MANIFEST, sha256_file, verify_manifest
from quilt_verify.signing import (
    SIGNATURE,
    SigningError,
    check_signature,
    keygen,
    load_public,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(EXIT_USAGE, f"quilt-verify: {message} (see quilt-verify --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quilt-verify", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"quilt-verify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the conformance suites (args after -- go to pytest)")
    run.add_argument("--target", metavar="URL", help="base URL; default: the embedded reference")
    run.add_argument("--api-key", metavar="KEY", help=f"tenant API key (or {qconfig.ENV_API_KEY})")
    run.add_argument("--jwt", metavar="JWT", help=f"tenant JWT (or {qconfig.ENV_JWT})")
    run.add_argument("--api-key-2", metavar="KEY",
                     help=f"a second tenant's key for isolation checks (or {qconfig.ENV_API_KEY_2})")
    run.add_argument("--report-dir", metavar="DIR", help="run folder (default reports/<run-id>)")
    run.add_argument("--suites", metavar="DIR", help="suites folder (default ./suites)")
    run.add_argument("--mode", choices=("smoke", "standard", "full"), default="full",
                     help="smoke creates nothing; standard creates and deletes its own "
                          "resources; full adds the node session and negative checks")
    run.add_argument("--fuzz-examples", type=int, metavar="N",
                     help="generated bodies per endpoint in the property-based suite")
    run.add_argument("--gate", metavar="CAPS",
                     help="comma-separated capabilities that must pass for exit 0")
    run.add_argument("--signing-key", metavar="PATH",
                     help="Ed25519 private key to sign the manifest (or QUILT_VERIFY_SIGNING_KEY)")

    report = sub.add_parser("report", help="(re)write RUN_DIR/VERIFICATION.md from a bundle")
    report.add_argument("run_dir", metavar="RUN_DIR")

    verify = sub.add_parser("verify", help="check a bundle's digests, files and signature")
    verify.add_argument("run_dir", metavar="RUN_DIR")
    verify.add_argument("--public-key", metavar="PATH", help="Ed25519 public key (PEM)")

    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for signing manifests")
    keygen.add_argument("--out", metavar="PREFIX", default="quilt-verify-signing",
                        help="writes PREFIX.key (mode 0600) and PREFIX.pub")

    janitor = sub.add_parser("janitor", help="list (and with --yes delete) leftovers of old runs")
    janitor.add_argument("--target", metavar="URL", help=f"base URL (or {qconfig.ENV_URL})")
    janitor.add_argument("--api-key", metavar="KEY", help=f"tenant API key (or {qconfig.ENV_API_KEY})")
    janitor.add_argument("--jwt", metavar="JWT", help=f"tenant JWT (or {qconfig.ENV_JWT})")
    janitor.add_argument("--older-than", default="6h", metavar="AGE",
                         help="only runs older than this (90s, 30m, 6h, 2d; default 6h)")
    janitor.add_argument("--yes", action="store_true", help="delete; without it, only list")

    sub.add_parser("bench", add_help=False,
                   help="measure the suite itself: full run, evidence overhead, scale "
                        "(from a checkout; quilt-verify bench --help)")

    behaviors = sub.add_parser("behaviors", help="print the behaviour catalogue of the suites")
    behaviors.add_argument("--format", choices=("yaml", "markdown"), default="yaml")
    behaviors.add_argument("--suites", metavar="DIR", help="suites folder (default ./suites)")

    diff = sub.add_parser("diff", help="compare two runs; exit 1 when the new one regressed")
    diff.add_argument("old_run", metavar="OLD_RUN")
    diff.add_argument("new_run", metavar="NEW_RUN")
    diff.add_argument("--latency-ratio", type=float, default=1.0,
                      help="p95 growth that counts as slower (1.0 = doubled, the default)")
    diff.add_argument("--latency-min-ms", type=float, default=20.0,
                      help="and by at least this many ms (default 20)")
    diff.add_argument("--latency-min-count", type=int, default=5,
                      help="only endpoints with this many samples in both runs (default 5)")

    serve = sub.add_parser("serve", help="run the reference backend in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--api-key", metavar="KEY",
                       help="tenant API key to accept (default: a random one, printed once)")
    serve.add_argument("--db", metavar="PATH", help="SQLite file to persist state in")
    serve.add_argument("--fault", metavar="NAME", action="append", default=[],
                       help="turn on a deliberate contract violation (repeatable; "
                            "--fault list names them all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return cmd_bench(argv[1:])
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args, extra)
    if extra:
        print("quilt-verify: arguments after -- are only for 'run'", file=sys.stderr)
        return EXIT_USAGE
    handlers = {"serve": cmd_serve, "report": cmd_report, "verify": cmd_verify,
                "keygen": cmd_keygen, "behaviors": cmd_behaviors, "diff": cmd_diff,
                "janitor": cmd_janitor}
    try:
        return handlers[args.command](args)
    except (BundleError, SigningError, qconfig.ConfigError) as exc:
        print(f"quilt-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _find_suites(given: str | None) -> Path:
    candidates = [Path(given)] if given else [
        Path.cwd() / "suites", Path(__file__).resolve().parent.parent / "suites"]
    for path in candidates:
        if path.is_dir() and any(path.glob("test_*.py")):
            return path
    where = given or "./suites or next to the quilt_verify package"
    raise qconfig.ConfigError(f"no conformance suites found in {where}")


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    from quilt_verify.plugin import PLUGIN_NAME

    try:
        suites = _find_suites(args.suites)
    except qconfig.ConfigError as exc:
        print(f"quilt-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # The CLI imported quilt_verify before pytest could mark it for assertion rewriting; the
    # suites are still rewritten, and the library asserts nothing, so the warning is noise.
    pytest_args = [str(suites), "-p", "no:cacheprovider", "-rs",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    pytest_args += ["--quilt-mode", args.mode]
    if args.fuzz_examples:
        pytest_args += ["--quilt-fuzz-examples", str(args.fuzz_examples)]
    if args.gate:
        pytest_args += ["--quilt-gate", args.gate]
    if args.signing_key:
        pytest_args += ["--quilt-signing-key", args.signing_key]
    # Credentials travel by environment, never on a command line another process could read.
    env_updates = {qconfig.ENV_URL: args.target, qconfig.ENV_API_KEY: args.api_key,
                   qconfig.ENV_JWT: args.jwt, qconfig.ENV_API_KEY_2: args.api_key_2}
    if args.report_dir:
        pytest_args += ["--quilt-report-dir", args.report_dir]
    saved = {k: os.environ.get(k) for k in env_updates}
    try:
        for key, value in env_updates.items():
            if value:
                os.environ[key] = value
        early = _early_checks(args)
        if early is not None:
            return early
        probe = _ConfigProbe()
        if _uses_xdist(extra) and not any(a.startswith("--dist") for a in extra):
            extra = [*extra, "--dist", "loadfile"]  # an ordered session stays on one worker
        code = int(pytest.main(pytest_args + extra, plugins=[probe]))
        run = probe.config.pluginmanager.get_plugin(PLUGIN_NAME) if probe.config else None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    reason = getattr(run, "exit_reason", None)
    if reason == "unreachable":
        return EXIT_UNREACHABLE
    if reason == "config" or code in (int(pytest.ExitCode.USAGE_ERROR),
                                      int(pytest.ExitCode.NO_TESTS_COLLECTED)):
        return EXIT_USAGE
    if code == int(pytest.ExitCode.OK):
        return EXIT_OK
    if code == int(pytest.ExitCode.INTERRUPTED):
        return 130
    return EXIT_FAILED


def _early_checks(args: argparse.Namespace) -> int | None:
    """Settle what can be settled before pytest starts, each failure in one line: settings
    (exit 2), and for an external target whether it is a Quilt backend that accepts the
    credential (exit 3). The plugin checks again (and records it) for direct pytest use."""
    from quilt_verify.catalogue import parse_gate
    from quilt_verify.client import QuiltClient
    from quilt_verify.preflight import PreflightFailure, preflight
    from quilt_verify.signing import load_private

    try:
        cfg = qconfig.resolve(report_dir=args.report_dir)
        try:
            parse_gate(args.gate)
        except ValueError as exc:
            raise qconfig.ConfigError(str(exc)) from None
        key_path = args.signing_key or os.environ.get("QUILT_VERIFY_SIGNING_KEY")
        if key_path:
            load_private(Path(key_path))
        if cfg.report_dir is not None:
            try:
                cfg.report_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise qconfig.ConfigError(f"cannot create report folder {cfg.report_dir}: "
                                          f"{exc.strerror or exc}") from None
            if any(cfg.report_dir.iterdir()):
                raise qconfig.ConfigError(f"report folder {cfg.report_dir} is not empty")
    except (qconfig.ConfigError, SigningError) as exc:
        print(f"quilt-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if cfg.base_url is None:
        return None
    with QuiltClient(cfg.base_url, api_key=cfg.api_key, jwt=cfg.jwt, retries=0) as client:
        try:
            preflight(client, cfg.base_url, cfg.auth_method)
        except PreflightFailure as exc:
            print(f"quilt-verify: {exc.reason}", file=sys.stderr)
            return EXIT_UNREACHABLE
    return None


def _uses_xdist(extra: list[str]) -> bool:
    return any(a == "-n" or (a.startswith("-n") and a[2:].isalnum()) or
               a.startswith("--numprocesses") for a in extra)


class _ConfigProbe:
    """Keeps the pytest config so ``run`` can read why the plugin ended the session."""

    config = None

    def pytest_configure(self, config: object) -> None:
        self.config = config


def cmd_serve(args: argparse.Namespace) -> int:
    from quilt_verify.reference import faults
    from quilt_verify.reference.server import serve_forever

    if "list" in args.fault:
        for fault in faults.CATALOGUE:
            print(f"{fault.name}\t{fault.capability}\t{fault.description}")
        return EXIT_OK
    try:
        faults.parse(args.fault)
    except faults.UnknownFault as exc:
        print(f"quilt-verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.port < 65536:
        print(f"quilt-verify: port {args.port} is out of range", file=sys.stderr)
        return EXIT_USAGE
    key = args.api_key or "qvref_" + secrets.token_urlsafe(24)

    def ready(url: str) -> None:  # the key is shown only once the server really serves
        if not args.api_key:
            print(f"generated API key (shown once): {key}", flush=True)
        print(f"reference backend listening on {url} (Ctrl-C stops it)", flush=True)
        if args.fault:
            print(f"FAULTS ON (deliberately broken): {', '.join(args.fault)}", flush=True)

    try:
        serve_forever(args.host, args.port, [key], args.db, on_ready=ready, faults=args.fault)
    except OSError as exc:
        print(f"quilt-verify: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Rewrite the document; keep the manifest true for it (a stale signature is removed)."""
    run_dir = Path(args.run_dir)
    bundle = Bundle(run_dir)
    text = render(bundle)
    target = run_dir / DOCUMENT
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        print(f"{target} is up to date")
        return EXIT_OK
    target.write_text(text, encoding="utf-8")
    manifest = dict(bundle.manifest)
    manifest["files"] = [e for e in manifest.get("files", []) if e["path"] != DOCUMENT]
    manifest["files"].append({"path": DOCUMENT, "sha256": sha256_file(target),
                              "bytes": target.stat().st_size})
    manifest["files"].sort(key=lambda e: e["path"])
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sig = run_dir / SIGNATURE
    if sig.exists():
        sig.unlink()
        print(f"removed {sig}: the manifest changed, sign the run again to restore it")
    print(f"wrote {target}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / MANIFEST).is_file():
        print(f"quilt-verify: {run_dir / MANIFEST} not found: not an evidence bundle",
              file=sys.stderr)
        return EXIT_USAGE
    problems = verify_manifest(run_dir)
    if not problems and (run_dir / DOCUMENT).is_file():
        try:
            if render(Bundle(run_dir)) != (run_dir / DOCUMENT).read_text(encoding="utf-8"):
                problems.append(f"{DOCUMENT}: does not match what the bundle establishes")
        except BundleError as exc:
            problems.append(str(exc))
    signed = (run_dir / SIGNATURE).is_file()
    if args.public_key:
        problem = check_signature(run_dir, load_public(Path(args.public_key)))
        if problem:
            problems.append(problem)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return EXIT_FAILED
    note = ("signature verified" if args.public_key else
            "signed; give --public-key to check the signature" if signed else "not signed")
    print(f"OK {run_dir}: every file matches the manifest; {note}")
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    private, public = keygen(Path(args.out))
    print(f"private key: {private} (keep it out of report folders)\npublic key: {public}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    old, new = Bundle(Path(args.old_run)), Bundle(Path(args.new_run))
    result = compare(old, new, latency_ratio=args.latency_ratio,
                     latency_min_ms=args.latency_min_ms,
                     latency_min_count=args.latency_min_count)
    print(render_diff(result, old, new))
    return EXIT_FAILED if result.regressed else EXIT_OK


def cmd_behaviors(args: argparse.Namespace) -> int:
    import pytest

    suites = _find_suites(args.suites)
    collector = _Collector()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        code = pytest.main([str(suites), "--collect-only", "-q", "-p", "no:cacheprovider"],
                           plugins=[collector])
    if code != 0:
        print(f"quilt-verify: collecting {suites} failed:\n{sink.getvalue()[-2000:]}",
              file=sys.stderr)
        return EXIT_USAGE
    rows = collector.rows
    if args.format == "markdown":
        print("| behaviour | capability | MUST | file |\n|---|---|---|---|")
        for r in rows:
            print(f"| `{r['id']}` | {r['capability']} | {r['must']} | `{r['file']}` |")
    else:
        for r in rows:
            print(f"- id: {json.dumps(r['id'])}")
            for key in ("capability", "must", "file", "test"):
                print(f"  {key}: {json.dumps(r[key], ensure_ascii=False)}")
    return EXIT_OK


class _Collector:
    """Collects the behaviour catalogue from the suites without running them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def pytest_collection_modifyitems(self, items: list) -> None:
        for item in items:
            marker = item.get_closest_marker("capability")
            capability = str(marker.args[0]) if marker and marker.args else "uncategorized"
            self.rows.append({
                "id": behavior_id(capability, item.name), "capability": capability,
                "must": must_sentences(getattr(getattr(item, "obj", None), "__doc__", None)),
                "file": item.nodeid.split("::")[0], "test": item.nodeid,
            })


def cmd_janitor(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from quilt_verify import janitor
    from quilt_verify.client import QuiltClient
    from quilt_verify.errors import QuiltError

    try:
        older_than = janitor.parse_duration(args.older_than)
    except ValueError as exc:
        raise qconfig.ConfigError(str(exc)) from None
    cfg = qconfig.resolve(url=args.target, api_key=args.api_key, jwt=args.jwt)
    if cfg.base_url is None:
        raise qconfig.ConfigError("janitor needs a target: give --target or QUILT_BASE_URL")
    now = datetime.now(UTC)
    with QuiltClient(cfg.base_url, api_key=cfg.api_key, jwt=cfg.jwt) as client:
        try:
            found = janitor.scan(client)
        except QuiltError as exc:
            print(f"quilt-verify: cannot list resources on {cfg.base_url}: {exc}",
                  file=sys.stderr)
            return EXIT_UNREACHABLE
        for item in found:
            print(janitor.describe(item, now, older_than))
        stale = [i for i in found if (i.age_s(now) or -1) >= older_than]
        print(f"{len(found)} qv- resources, {len(stale)} older than {args.older_than}")
        if not args.yes:
            if stale:
                print("nothing deleted: add --yes to delete the stale ones")
            return EXIT_OK
        failures = janitor.sweep(client, stale, older_than_s=older_than, now=now)
    return EXIT_FAILED if failures else EXIT_OK


def cmd_bench(bench_args: list[str]) -> int:
    """``quilt-verify bench ARGS`` is ``python -m benchmarks ARGS`` (benchmarks/ is in the checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "runner.py").is_file():
        print("quilt-verify: bench needs a source checkout (benchmarks/ next to quilt_verify/)",
              file=sys.stderr)
        return EXIT_USAGE
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.runner import main as bench_main

    return bench_main(bench_args, prog="quilt-verify bench")
