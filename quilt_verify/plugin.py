"""The pytest plugin: options, fixtures, ordered sessions with blocked steps, evidence, exit status.

The plugin stays dormant unless the collected tests are conformance suites (a ``capability``
marker) or use its fixtures; then it resolves the target (starting the reference backend when
none is given), checks that the target answers and accepts the credential, records every
exchange, and closes the bundle at the end.
"""

from __future__ import annotations

import os
import platform
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from quilt_verify import config as qconfig
from quilt_verify import fixtures
from quilt_verify.behaviors import behavior_id, must_sentences
from quilt_verify.catalogue import parse_gate
from quilt_verify.client import QuiltClient, Throttle
from quilt_verify.document import render_run
from quilt_verify.evidence import Recorder, evidence_name
from quilt_verify.fixtures import PLUGIN_NAME
from quilt_verify.junit import junit_xml
from quilt_verify.ledger import Ledger
from quilt_verify.naming import Names
from quilt_verify.preflight import PreflightFailure, preflight
from quilt_verify.redaction import Redactor
from quilt_verify.schema import SchemaChecker, format_violations
from quilt_verify.signing import SigningError, fingerprint, load_private, sign_manifest

QUILT_FIXTURES = frozenset({"quilt", "quilt_run", "quilt_config", "quilt_recorder",
                            "quilt_ledger", "quilt_names", "make_agent", "step",
                            "register_secret", "quilt_tenant_b"})
ENV_SIGNING_KEY = "QUILT_VERIFY_SIGNING_KEY"
MODES = ("smoke", "standard", "full")
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quilt-verify", "Quilt API conformance")
    group.addoption("--quilt-url", dest="quilt_url", default=None,
                    help=f"target base URL (env {qconfig.ENV_URL}); none: start the reference")
    group.addoption("--quilt-api-key", dest="quilt_api_key", default=None,
                    help=f"tenant API key (env {qconfig.ENV_API_KEY})")
    group.addoption("--quilt-jwt", dest="quilt_jwt", default=None,
                    help=f"tenant JWT, sent as Bearer; wins over the key (env {qconfig.ENV_JWT})")
    group.addoption("--quilt-api-key-2", dest="quilt_api_key_2", default=None,
                    help=f"a second tenant's API key for isolation checks "
                         f"(env {qconfig.ENV_API_KEY_2})")
    group.addoption("--quilt-report-dir", dest="quilt_report_dir", default=None,
                    help="run folder for the evidence bundle (default reports/<run-id>)")
    group.addoption("--quilt-max-rps", dest="quilt_max_rps", type=float, default=None,
                    help="at most this many requests per second (default: no limit)")
    group.addoption("--quilt-max-concurrency", dest="quilt_max_concurrency", type=int, default=8,
                    help="at most this many requests in flight (default 8)")
    group.addoption("--quilt-connect-timeout", dest="quilt_connect_timeout", type=float,
                    default=5.0, help="seconds to connect (default 5)")
    group.addoption("--quilt-read-timeout", dest="quilt_read_timeout", type=float, default=30.0,
                    help="seconds to wait for an answer (default 30)")
    group.addoption("--quilt-fuzz-examples", dest="quilt_fuzz_examples", type=int, default=None,
                    help="generated bodies per endpoint in the property-based suite "
                         "(env QUILT_FUZZ_EXAMPLES; default 15)")
    group.addoption("--quilt-mode", dest="quilt_mode", default="full", choices=MODES,
                    help="smoke: health and read-only listings, creates nothing; standard: "
                         "creates and deletes its own resources; full: standard plus the node "
                         "session and the negative and property-based checks (default)")
    group.addoption("--quilt-gate", dest="quilt_gate", default=None,
                    help="comma-separated capabilities that must pass; others only report")
    group.addoption("--quilt-signing-key", dest="quilt_signing_key", default=None,
                    help="Ed25519 private key (PEM) to sign the manifest with "
                         f"(env {ENV_SIGNING_KEY})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "capability(name): the capability a suite verifies")
    config.addinivalue_line("markers", "session: an ordered session; a failed step blocks the rest")
    config.addinivalue_line("markers", "mode(name): the least mode a check runs in: smoke, "
                                       "standard or full (unmarked: full)")
    run = QuiltRun(config)
    config.pluginmanager.register(run, PLUGIN_NAME)
    config.pluginmanager.register(fixtures, PLUGIN_NAME + "-fixtures")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistBridge(run), PLUGIN_NAME + "-xdist")


class QuiltRun:
    """State of one conformance run inside a pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.active = False
        self.cfg: qconfig.Config | None = None
        self.server: Any = None
        self.redactor = Redactor()
        self.recorder: Recorder | None = None
        self.client: QuiltClient | None = None
        self.schema: SchemaChecker | None = None
        self.ledger = Ledger()
        self.names: Names | None = None
        self.started_at = ""
        self.blocked: dict[str, str] = {}
        self.deselected: dict[str, list[tuple[int, str]]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.leaks: list[Any] = []
        self.leftovers: list[dict[str, str]] = []
        self.manifest_path: Path | None = None
        self.exit_reason: str | None = None
        self.gate: list[str] = []
        self.preflight_failure: str | None = None
        self.preflight_reason: str | None = None
        self._previous_sigterm: Any = None
        self.gate_verdict: str | None = None
        self.gate_missing: list[str] = []
        self.signing_key: Any = None

    # -- activation ----------------------------------------------------------------------------
    @property
    def role(self) -> str:
        """serial (no xdist), controller (xdist, runs nothing) or worker (xdist, runs tests)."""
        if hasattr(self.config, "workerinput"):
            return "worker"
        return "controller" if self.config.pluginmanager.hasplugin("dsession") else "serial"

    @property
    def shared(self) -> dict[str, Any] | None:
        """Settings the controller handed to this worker (None outside a distributed run)."""
        return getattr(self.config, "workerinput", {}).get("quilt")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Under xdist the controller collects nothing, so it decides from the arguments: a run
        # of the conformance suites starts the target, the preflight and the bundle here.
        if self.role == "controller" and not self.config.option.collectonly and (
                self.config.option.quilt_url or any(
                    "suites" in Path(str(arg).split("::")[0]).resolve().parts
                    for arg in self.config.args)):
            self.start()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._select_mode(items)
        if self.config.option.collectonly:
            return
        if any(i.get_closest_marker("capability") or QUILT_FIXTURES & set(
                getattr(i, "fixturenames", ())) for i in items):
            self.start()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Remember deselected session steps: the steps after one cannot run meaningfully."""
        for item in items:
            key = _session_key(item)
            if key:
                self.deselected.setdefault(key, []).append((_line(item), item.name))

    def _select_mode(self, items: list[pytest.Item]) -> None:
        """Deselect checks that need a more invasive mode than the one asked for."""
        limit = MODES.index(self.config.option.quilt_mode)
        keep, drop = [], []
        for item in items:
            (keep if MODES.index(item_mode(item)) <= limit else drop).append(item)
        if drop and any(i.get_closest_marker("capability") for i in items):
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def start(self) -> None:
        if self.active:
            return
        self.active = True
        opt = self.config.option
        shared = self.shared
        try:
            if shared is not None:  # a worker: the controller resolved everything already
                cfg = qconfig.resolve(url=shared["url"], api_key=shared["api_key"],
                                      jwt=shared["jwt"], api_key_2=shared["api_key_2"],
                                      report_dir=shared["run_dir"], run_id=shared["run_id"],
                                      environ={}, dotenv_path=None)
            else:
                cfg = qconfig.resolve(url=opt.quilt_url, api_key=opt.quilt_api_key,
                                      jwt=opt.quilt_jwt, api_key_2=opt.quilt_api_key_2,
                                      report_dir=opt.quilt_report_dir)
            run_dir = cfg.report_dir or (self.config.rootpath / "reports" / cfg.run_id)
            if shared is None and run_dir.exists() and any(run_dir.iterdir()):
                raise qconfig.ConfigError(f"report folder {run_dir} is not empty")
            try:
                self.gate = parse_gate(opt.quilt_gate)
            except ValueError as exc:
                raise qconfig.ConfigError(str(exc)) from None
            key_path = opt.quilt_signing_key or os.environ.get(ENV_SIGNING_KEY)
            if key_path:
                if Path(key_path).resolve().is_relative_to(run_dir.resolve()):
                    raise qconfig.ConfigError("the signing key must not live in the report folder")
                try:
                    self.signing_key = load_private(Path(key_path))
                except SigningError as exc:
                    raise qconfig.ConfigError(str(exc)) from None
        except qconfig.ConfigError as exc:
            self._exit(f"configuration error: {exc}", EXIT_CONFIG)
        for secret, label in ((cfg.api_key, "configured api key"), (cfg.jwt, "configured jwt"),
                              (cfg.api_key_2, "second tenant api key")):
            if secret:
                self.redactor.registry.add(secret.reveal(), label)
        if cfg.base_url is None:
            try:
                cfg = self._start_reference(cfg)
            except Exception as exc:  # noqa: BLE001 - any start failure ends the run cleanly
                self.exit_reason = "unreachable"
                self._exit(f"the embedded reference backend did not start: "
                           f"{type(exc).__name__}: {exc}", EXIT_UNREACHABLE)
        self.cfg = cfg
        self.names = Names(cfg.run_id)
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            self.recorder = Recorder(run_dir, self.redactor)
        except OSError as exc:
            self._exit(f"configuration error: cannot create report folder {run_dir}: "
                       f"{exc.strerror or exc}", EXIT_CONFIG)
        try:
            throttle = Throttle(max_concurrency=opt.quilt_max_concurrency,
                                max_rps=opt.quilt_max_rps)
        except ValueError as exc:
            self._exit(f"configuration error: {exc}", EXIT_CONFIG)
        recorder = self.recorder
        self.schema = SchemaChecker(test_of=lambda: recorder.current_test)
        self.client = QuiltClient(cfg.base_url or "", api_key=cfg.api_key, jwt=cfg.jwt,
                                  connect_timeout=opt.quilt_connect_timeout,
                                  read_timeout=opt.quilt_read_timeout, retries=cfg.retries,
                                  observers=[self.recorder, self.schema], throttle=throttle)
        if shared is None:
            self._catch_sigterm()
            self._preflight()

    def _catch_sigterm(self) -> None:
        """SIGTERM ends the run like Ctrl-C, so the ledger is still unwound and the bundle closed."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        self._previous_sigterm = signal.signal(signal.SIGTERM, interrupt)

    def _start_reference(self, cfg: qconfig.Config) -> qconfig.Config:
        from quilt_verify.reference.server import ReferenceServer

        key, key_2 = ("qvref_" + secrets.token_urlsafe(24) for _ in range(2))
        self.redactor.registry.add(key, "reference bootstrap key")
        self.redactor.registry.add(key_2, "reference second tenant key")
        self.server = ReferenceServer(api_keys=[key], tenants={"tenant-b": [key_2]})
        self.server.start()
        return replace(cfg, base_url=self.server.url, api_key=qconfig.Secret(key),
                       api_key_2=qconfig.Secret(key_2))

    def _preflight(self) -> None:
        """Decide before any suite runs that the target is a Quilt backend that accepts us."""
        assert self.client is not None and self.recorder is not None and self.cfg is not None
        self.recorder.begin_test("_preflight")
        try:
            preflight(self.client, str(self.cfg.base_url), self.cfg.auth_method)
        except PreflightFailure as exc:
            self.preflight_failure = exc.kind
            self._fail_preflight(exc.reason)
        finally:
            self.recorder.begin_test(None)

    def _fail_preflight(self, reason: str) -> None:
        self.exit_reason = "unreachable"
        self.preflight_reason = self.redactor.scrub_text(reason)
        self._close(outcome=f"preflight failed ({self.preflight_failure or 'unreachable'})")
        self._exit(self.redactor.scrub_text(reason), EXIT_UNREACHABLE)

    def _exit(self, reason: str, code: int) -> None:
        self.exit_reason = self.exit_reason or ("config" if code == EXIT_CONFIG else "other")
        self._stop_reference()
        self._restore_sigterm()
        pytest.exit(f"quilt-verify: {reason}", returncode=code)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def _stop_reference(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- ordered sessions ----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not self.active:
            return
        if self.recorder is not None:
            self.recorder.begin_test(item.nodeid)
        capability = _capability(item)
        item.user_properties.append(("quilt", {
            "behavior_id": behavior_id(capability, item.name),
            "capability": capability,
            "behavior": must_sentences(getattr(getattr(item, "obj", None), "__doc__", None)),
        }))
        key = _session_key(item)
        if key and key in self.blocked:
            pytest.skip(f"blocked by {self.blocked[key]}")
        earlier = [name for line, name in sorted(self.deselected.get(key or "", []))
                   if line < _line(item)]
        if earlier:
            pytest.skip(f"blocked by {earlier[0]} (deselected)")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[Any]) -> Iterator[None]:
        outcome = yield
        if not self.active:
            return
        report: pytest.TestReport = outcome.get_result()
        if call.when in ("call", "teardown"):
            self._judge_contract(item, report)
        self._scrub_report(report)
        key = _session_key(item)
        if report.failed and key and key not in self.blocked:
            self.blocked[key] = item.name

    def _judge_contract(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Every answer is checked against the contract; a violation fails the check that saw
        it, naming the request id and the JSON pointer, and is recorded in the evidence."""
        if self.schema is None or self.recorder is None:
            return
        violations = self.schema.take(item.nodeid)
        echoes = self.recorder.take_echoes(item.nodeid)
        if not violations and not echoes:
            return
        for violation in violations:
            self.recorder.note("contract_violation", violation.as_dict())
        for echo in echoes:
            self.recorder.note("secret_echo", {"problem": echo})
        text = "\n".join(filter(None, [format_violations(violations) if violations else "",
                                        *echoes]))
        if report.passed:
            report.outcome, report.longrepr = "failed", text
        else:
            report.sections.append(("contract violations", text))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Results are built from reports, which reach the controller from xdist workers too."""
        if self.active and self.role != "worker":
            self._note_result(report)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """With allure-pytest active: the capability as feature, the exchanges as attachment."""
        allure = self._allure()
        if allure is not None:
            allure.dynamic.feature(_capability(item) or "uncategorized")
        yield
        if allure is not None and self.recorder is not None:
            path = self.recorder.run_dir / evidence_name(item.nodeid)
            if path.is_file():  # already redacted on disk
                allure.attach(path.read_text(encoding="utf-8"), name="exchanges (redacted)",
                              attachment_type="application/x-ndjson", extension="jsonl")

    def _allure(self) -> Any:
        if not self.active or not self.config.pluginmanager.hasplugin("allure_pytest"):
            return None
        if not getattr(self.config.option, "allure_report_dir", None):
            return None
        import allure

        return allure

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.recorder is not None:
            self.recorder.begin_test(None)

    def _scrub_report(self, report: pytest.TestReport) -> None:
        scrub = self.redactor.scrub_text
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            path, lineno, reason = report.longrepr
            report.longrepr = (path, lineno, scrub(reason))
        elif report.longrepr is not None:
            text = str(report.longrepr)
            clean = scrub(text)
            if clean != text:
                report.longrepr = clean
        report.sections = [(title, scrub(content)) for title, content in report.sections]

    def _note_result(self, report: pytest.TestReport) -> None:
        info = dict(report.user_properties).get("quilt")
        if not isinstance(info, dict):  # not set up by us (e.g. failed before our setup hook)
            info = {"behavior_id": report.nodeid, "capability": None, "behavior": ""}
        entry = self.results.setdefault(report.nodeid, {
            "nodeid": report.nodeid,
            "behavior_id": info["behavior_id"],
            "module": report.nodeid.split("::")[0],
            "name": report.nodeid.split("::")[-1],
            "capability": info["capability"],
            "behavior": info["behavior"],
            "outcome": "not run",
            "duration_s": 0.0,
            "evidence": evidence_name(report.nodeid),
        })
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 4)
        if report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            if reason.startswith("Skipped: "):
                reason = reason[len("Skipped: "):]
            if reason.startswith("blocked by "):
                entry.update(outcome="blocked", blocked_by=reason[len("blocked by "):])
            else:
                entry.update(outcome="skipped", reason=reason)
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = _failure_line(report)
        elif report.when == "call" and report.passed and entry["outcome"] == "not run":
            entry["outcome"] = "passed"

    # -- closing ---------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.active or self.recorder is None or self.manifest_path is not None:
            return
        if self.role == "worker" and self.shared is not None:
            self._finish_worker()
            return
        restore = _hold_signals()  # a second Ctrl-C or SIGTERM must not cut the bundle short
        try:
            self._finish(session, exitstatus)
        finally:
            restore()
            self._restore_sigterm()

    def _finish(self, session: pytest.Session, exitstatus: int) -> None:
        assert self.recorder is not None
        self.recorder.begin_test("_cleanup")
        self.leftovers += self.ledger.unwind()
        results = self.results.values()
        failing = {r["capability"] for r in results if r["outcome"] in ("failed", "error")}
        failed = bool(failing) or exitstatus not in (0, 5)
        if self.gate:
            ran = {r["capability"] for r in results if r["outcome"] in ("passed", "failed",
                                                                        "error")}
            self.gate_missing = sorted(set(self.gate) - ran)
            self.gate_verdict = ("failed" if failing & set(self.gate) or self.gate_missing
                                 else "passed")
        interrupted = exitstatus == int(pytest.ExitCode.INTERRUPTED)
        self._close(outcome="interrupted" if interrupted else "failed" if failed else "passed")
        if self.leaks:
            session.exitstatus = 1
        elif self.gate and exitstatus in (0, 1):
            session.exitstatus = 1 if self.gate_verdict == "failed" else 0
        self._stop_reference()

    def _finish_worker(self) -> None:
        """Unwind this worker's resources and hand what the bundle needs to the controller
        (over xdist's channel, in memory: secrets never touch disk)."""
        assert self.recorder is not None
        worker = self.config.workerinput.get("workerid", "worker")
        self.recorder.begin_test(f"_cleanup-{worker}")
        leftovers = self.ledger.unwind()
        self.recorder.begin_test(None)
        self.recorder.close_files()
        self.config.workeroutput["quilt"] = {
            "secrets": self.redactor.registry.labels(),
            "variants": {k: sorted(v) for k, v in self.recorder.variants.items()},
            "durations": self.recorder.durations,
            "exchanges": self.recorder.exchange_count,
            "leftovers": leftovers,
        }

    def shared_settings(self) -> dict[str, Any]:
        """What a worker needs to join this run (sent over xdist's channel, not written)."""
        assert self.cfg is not None and self.recorder is not None

        def reveal(secret: qconfig.Secret | None) -> str | None:
            return secret.reveal() if secret else None

        return {"url": self.cfg.base_url, "api_key": reveal(self.cfg.api_key),
                "jwt": reveal(self.cfg.jwt), "api_key_2": reveal(self.cfg.api_key_2),
                "run_id": self.cfg.run_id, "run_dir": str(self.recorder.run_dir)}

    def merge_worker(self, output: dict[str, Any] | None) -> None:
        if not output or self.recorder is None:
            return
        for value, label in output["secrets"].items():
            self.redactor.registry.add(value, label)
        rec = self.recorder
        for name, values in output["variants"].items():
            rec.variants.setdefault(name, set()).update(values)
        for key, values in output["durations"].items():
            rec.durations.setdefault(key, []).extend(values)
        rec.exchange_count += output["exchanges"]
        self.leftovers += output["leftovers"]

    def _close(self, *, outcome: str) -> None:
        assert self.recorder is not None and self.cfg is not None
        rec = self.recorder
        rec.begin_test(None)
        rec.write_json("results.json", {"tests": list(self.results.values())})
        if self.leftovers:
            rec.write_json("leftovers.json", {"leftovers": self.leftovers})
        info = self.run_info()
        rec.write_json("run.json", info)
        (rec.run_dir / "junit.xml").write_bytes(
            self.redactor.scrub_bytes(junit_xml(list(self.results.values()))))
        self.manifest_path, self.leaks = rec.finish(run_info=info, outcome=outcome,
                                                    document=render_run)
        if self.signing_key is not None:
            sign_manifest(rec.run_dir, self.signing_key)

    def run_info(self) -> dict[str, Any]:
        assert self.cfg is not None and self.recorder is not None
        return {
            "run_id": self.cfg.run_id,
            "target": self.cfg.base_url,
            "target_kind": "embedded reference backend" if self.server else "external",
            "auth_method": self.cfg.auth_method,
            "mode": self.config.option.quilt_mode,
            "gate": {"capabilities": self.gate, "verdict": self.gate_verdict,
                     "not_run": self.gate_missing} if self.gate else None,
            "signing_key": fingerprint(self.signing_key.public_key()) if self.signing_key
            else None,
            "started_at": self.started_at,
            "preflight": self.preflight_reason or "passed",
            "exchanges": self.recorder.exchange_count,
            "variants": {k: sorted(v) for k, v in sorted(self.recorder.variants.items())},
            "tool": {"name": "quilt-verify", "python": platform.python_version()},
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.active or self.recorder is None:
            return
        tr = terminalreporter
        tr.section("quilt-verify")
        tr.write_line(f"target: {self.cfg.base_url if self.cfg else '?'}")
        tr.write_line(f"evidence: {self.recorder.run_dir}")
        if self.manifest_path:
            tr.write_line(f"manifest: {self.manifest_path}")
        for leak in self.leaks:
            tr.write_line(f"LEAK: {leak.secret_label} found in {leak.path} (scrubbed; run failed)",
                          red=True)
        for left in self.leftovers:
            tr.write_line(f"left behind: {left['kind']} {left['id']} {left['name']}: "
                          f"{left['problem']}", yellow=True)


def _hold_signals() -> Callable[[], None]:
    """Ignore SIGINT and SIGTERM until the returned function restores them (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    return restore


class _XdistBridge:
    """xdist's controller hooks (registered only when xdist is installed)."""

    def __init__(self, run: QuiltRun) -> None:
        self.run = run

    def pytest_configure_node(self, node: Any) -> None:
        if self.run.active and self.run.cfg is not None:
            node.workerinput["quilt"] = self.run.shared_settings()

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.run.merge_worker(getattr(node, "workeroutput", {}).get("quilt"))


def item_mode(item: pytest.Item) -> str:
    marker = item.get_closest_marker("mode")
    mode = str(marker.args[0]) if marker and marker.args else "full"
    if mode not in MODES:
        raise pytest.UsageError(f"{item.nodeid}: unknown mode {mode!r} (known: {', '.join(MODES)})")
    return mode


def _session_key(item: pytest.Item) -> str | None:
    if item.get_closest_marker("session") is None:
        return None
    return item.nodeid.split("::")[0]


def _line(item: pytest.Item) -> int:
    return item.location[1] or 0


def _capability(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("capability")
    return str(marker.args[0]) if marker and marker.args else None


def _failure_line(report: pytest.TestReport) -> str:
    """The assertion's own message: the first ``E`` line of the failure, else the last line."""
    text = report.longreprtext.strip().splitlines()
    for line in text:
        if line.startswith("E "):
            return line[2:].strip()[:500]
    return (text[-1] if text else "")[:500]
