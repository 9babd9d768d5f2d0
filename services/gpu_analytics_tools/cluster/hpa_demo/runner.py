"""The run: preflight, port-forward, Locust headless with the HpaDemo shape, the polls;
children stopped however it ends, the report written even when interrupted."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster.hpa_demo.record import (
    HISTORY_FILE,
    LOCUST_PREFIX,
    DemoError,
    HpaState,
    LoadSample,
    Poll,
    RunRecord,
    parse_objects,
    poll_from,
    read_locust_history,
)
from gpu_analytics_tools.cluster.hpa_demo.report import duration, plural, render, summary_text
from gpu_analytics_tools.cluster.kube import Kubectl, KubeError, PortForward, find_kubectl
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.stack.process import StopRequest, log_tail, spawn, stop_child

# --- the runner ---------------------------------------------------------------------------


def find_locust() -> str:
    beside = Path(sys.executable).with_name("locust")
    if beside.is_file():
        return str(beside)
    if found := shutil.which("locust"):
        return found
    raise DemoError("locust not found: run make setup (it is in .venv)")


@dataclass
class DemoOptions:
    out: Path
    namespace: str = "pipeline"
    hpa: str = "processor"
    service: str = "svc/processor"
    remote_port: int = 8080
    interval: float = 10.0
    settle: float = 900.0  # seconds after the load to wait for the HPA's minimum
    context: str | None = None
    locustfile: str = ""  # default: loadtest/ of the checkout


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return repo_root() / ".cache" / "demo-hpa" / stamp


def _progress_line(elapsed: float, poll: Poll, sample: LoadSample | None) -> str:
    load = "load -"
    if sample is not None:
        p95 = f"{sample.p95_ms:.0f} ms" if sample.p95_ms is not None else "-"
        load = f"{sample.users} users, {sample.rps:.1f} req/s, p95 {p95}"
    if poll.hpa is None:
        return f"{duration(elapsed):>6} {load} | {poll.error}"
    h = poll.hpa
    cpu = f"{h.cpu_pct}%" if h.cpu_pct is not None else "<unknown>"
    ready = poll.deployment.ready_replicas if poll.deployment else "?"
    desired = h.desired_replicas if h.desired_replicas is not None else "?"
    return (
        f"{duration(elapsed):>6} {load} | cpu {cpu}/{h.cpu_target_pct}% | replicas "
        f"{h.current_replicas} (desired {desired}, ready {ready})"
    )


class Demo:
    """The run: preflight, port-forward, Locust, polls; children stopped however it ends."""

    def __init__(self, options: DemoOptions, say: Callable[[str], None]) -> None:
        self.options = options
        self.say = say
        self.kubectl = Kubectl(find_kubectl(), options.namespace, options.context)
        self.locust_bin = find_locust()
        self.forward = PortForward(
            self.kubectl, options.service, options.remote_port, options.out / "port-forward.log"
        )
        self.locust: subprocess.Popen[bytes] | None = None

    def preflight(self) -> tuple[str, HpaState]:
        context = self.kubectl.current_context()
        ns = self.options.namespace
        try:
            objects = parse_objects(self._get())
        except KubeError as exc:
            raise DemoError(f"cannot read namespace {ns} of context {context}: {exc}") from exc
        hpa = objects.hpas.get(self.options.hpa)
        if hpa is None:
            found = ", ".join(sorted(objects.hpas)) or "none"
            raise DemoError(
                f"no HorizontalPodAutoscaler {self.options.hpa} in namespace {ns} of context "
                f"{context} (found: {found}); is the pipeline installed (make cluster-up)?"
            )
        if hpa.target not in objects.deployments:
            raise DemoError(f"HPA {hpa.name} scales Deployment {hpa.target}, not in {ns}")
        return context, hpa

    def _get(self) -> str:
        return self.kubectl.run(
            "get", "hpa,deployment", "-o", "json", f"--request-timeout={self.kubectl.timeout:.0f}s"
        )

    def check_processor(self) -> None:
        url = f"{self.forward.url}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DemoError(
                f"the processor is not ready (GET /readyz through the port-forward: {exc.code})"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DemoError(
                f"the processor does not answer through the port-forward: {exc}"
            ) from exc

    def start_locust(self) -> None:
        out = self.options.out
        locustfile = self.options.locustfile or str(repo_root() / "loadtest")
        cmd = [
            self.locust_bin, "-f", locustfile, "--headless",
            "--host", self.forward.url,
            "--csv", str(out / LOCUST_PREFIX), "--csv-full-history",
            "--html", str(out / "locust.html"), "--only-summary",
        ]  # fmt: skip
        self.locust = spawn(cmd, out / "locust.log", cwd=repo_root(), die_with_parent=True)

    def stop_children(self) -> None:
        if self.locust is not None and self.locust.poll() is None:
            # SIGINT: with a shape, headless Locust only handles Ctrl-C (SIGTERM kills it
            # before its report); it then writes its last rows and the HTML report.
            self.locust.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.locust.wait(30)
            stop_child(self.locust, 10)
        self.forward.stop()

    def poll(self, polls_file: Path) -> Poll:
        now = time.time()
        try:
            output = json.loads(self._get())
            record: dict[str, Any] = {"time": round(now, 3), "output": output}
            poll = poll_from(now, parse_objects(output), self.options.hpa)
        except (KubeError, json.JSONDecodeError) as exc:
            record = {"time": round(now, 3), "error": str(exc)}
            poll = Poll(now, None, None, str(exc))
        with polls_file.open("a") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        return poll

    def run(self) -> RunRecord:
        o = self.options
        context, hpa = self.preflight()
        o.out.mkdir(parents=True, exist_ok=True)
        self.say(
            f"context {context}, namespace {o.namespace}: HPA {hpa.name} -> Deployment "
            f"{hpa.target} ({hpa.min_replicas}..{hpa.max_replicas} replicas, CPU target "
            f"{hpa.cpu_target_pct}%, now {hpa.current_replicas}); output {o.out}"
        )
        if hpa.cpu_pct is None:
            self.say(
                f"warning: HPA {hpa.name} reports no CPU utilization"
                f"{' (' + hpa.problem + ')' if hpa.problem else ''}; is metrics-server running?"
            )
        record = RunRecord(o.namespace, o.hpa, context, started=time.time())
        with StopRequest() as stop:
            try:
                self.forward.start()
                self.say(f"port-forward {o.service} on {self.forward.url}")
                self.check_processor()
                self.start_locust()
                record.started = time.time()
                record.write(o.out)
                shape = "the HpaDemo shape" if not o.locustfile else o.locustfile
                self.say(f"Locust started ({shape}); Ctrl-C stops and still writes the report")
                self._loop(record, stop)
            finally:
                self.stop_children()
                if self.locust is not None:
                    if record.load_end is None:
                        record.load_end = time.time()
                        record.locust_exit = self.locust.returncode
                    record.write(o.out)
        return record

    def _loop(self, record: RunRecord, stop: StopRequest) -> None:
        o = self.options
        polls_file = o.out / "polls.jsonl"
        history = o.out / HISTORY_FILE
        begin = time.monotonic()
        settle_until: float | None = None
        tick = 0
        while not stop.requested:
            poll = self.poll(polls_file)
            try:
                samples = read_locust_history(history)
            except DemoError:
                samples = []
            sample = samples[-1] if samples and record.load_end is None else None
            self.say(_progress_line(poll.time - record.started, poll, sample))
            assert self.locust is not None and self.forward.proc is not None
            if record.load_end is None and self.locust.poll() is not None:
                record.load_end, record.locust_exit = time.time(), self.locust.returncode
                record.write(o.out)
                if not samples:
                    raise DemoError(
                        f"Locust exited ({self.locust.returncode}) without load: "
                        f"{log_tail(o.out / 'locust.log', 5)}"
                    )
                self.say(
                    f"Locust finished ({self.locust.returncode}); waiting up to "
                    f"{duration(o.settle)} for {o.hpa} to return to its minimum"
                )
                settle_until = time.monotonic() + o.settle
            if record.load_end is None and not self.forward.alive():
                record.port_forward_restarts += 1
                self.say(f"port-forward exited ({self.forward.proc.returncode}); restarting")
                try:
                    self.forward.start()
                except KubeError as exc:
                    self.say(f"{exc} (retrying at the next poll)")
            if settle_until is not None:
                h = poll.hpa
                if h is not None and h.current_replicas is not None:
                    if h.current_replicas <= h.min_replicas:
                        self.say(f"{o.hpa} is back at {plural(h.current_replicas, 'replica')}")
                        return
                if time.monotonic() >= settle_until:
                    self.say(f"{o.hpa} still above its minimum after {duration(o.settle)}")
                    return
            tick += 1
            while not stop.requested and time.monotonic() < begin + tick * o.interval:
                time.sleep(min(0.2, o.interval))
        record.interrupted = True
        self.say("interrupted: stopping Locust and the port-forward")


def run_demo(options: DemoOptions, say: Callable[[str], None]) -> int:
    """The whole demo; 0 when it ran, 1 naming what failed, 130 when interrupted (the report
    of what ran is still written)."""
    try:
        demo = Demo(options, say)
        record = demo.run()
    except KubeError as exc:  # DemoError too
        say(f"error: {exc}")
        if (options.out / "run.json").exists():
            with contextlib.suppress(DemoError, OSError):
                render(options.out)
        return 1
    summary, _ = render(options.out)
    sys.stdout.write(summary_text(summary, options.namespace) + "\n")
    sys.stdout.flush()
    say(f"timeline.csv, summary.txt, summary.json and replicas.png in {options.out}")
    if record.interrupted:
        return 130
    if summary.peak_cpu_pct is None:
        say("error: the HPA never reported CPU utilization; is metrics-server running?")
        return 1
    return 0
