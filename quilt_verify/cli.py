"""The ``quilt-verify`` command. ``run`` wraps pytest; ``serve`` runs the reference backend.

Exit codes: 0 every check passed; 1 a conformance check failed; 2 usage or configuration
error; 3 target unreachable or authentication refused (decided before the suites start).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from quilt_verify import __version__
from quilt_verify import config as qconfig

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
    run.add_argument("--report-dir", metavar="DIR", help="run folder (default reports/<run-id>)")
    run.add_argument("--suites", metavar="DIR", help="suites folder (default ./suites)")

    serve = sub.add_parser("serve", help="run the reference backend in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--api-key", metavar="KEY",
                       help="tenant API key to accept (default: a random one, printed once)")
    serve.add_argument("--db", metavar="PATH", help="SQLite file to persist state in")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    return cmd_serve(args)


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
    pytest_args = [str(suites), "-p", "no:cacheprovider", "-rs"]
    # Credentials travel by environment, never on a command line another process could read.
    env_updates = {qconfig.ENV_URL: args.target, qconfig.ENV_API_KEY: args.api_key,
                   qconfig.ENV_JWT: args.jwt}
    if args.report_dir:
        pytest_args += ["--quilt-report-dir", args.report_dir]
    saved = {k: os.environ.get(k) for k in env_updates}
    try:
        for key, value in env_updates.items():
            if value:
                os.environ[key] = value
        try:  # the plugin resolves again; this only turns a bad setting into one line, early
            qconfig.resolve()
        except qconfig.ConfigError as exc:
            print(f"quilt-verify: {exc}", file=sys.stderr)
            return EXIT_USAGE
        probe = _ConfigProbe()
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


class _ConfigProbe:
    """Keeps the pytest config so ``run`` can read why the plugin ended the session."""

    config = None

    def pytest_configure(self, config: object) -> None:
        self.config = config


def cmd_serve(args: argparse.Namespace) -> int:
    from quilt_verify.reference.server import serve_forever

    if not 0 < args.port < 65536:
        print(f"quilt-verify: port {args.port} is out of range", file=sys.stderr)
        return EXIT_USAGE
    key = args.api_key
    if not key:
        key = "qvref_" + secrets.token_urlsafe(24)
        print(f"generated API key (shown once): {key}", flush=True)
    print(f"reference backend on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        serve_forever(args.host, args.port, [key], args.db)
    except OSError as exc:
        print(f"quilt-verify: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
