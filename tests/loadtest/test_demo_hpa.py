"""`gpu-analytics cluster demo-hpa` (make demo-hpa) without a cluster: its parsing, timeline,
summary and plot on output recorded in the tools' exact formats (testdata/demo-hpa/, see its
README: kubectl's from a real API server and HPA controller of the cluster simulation, Locust's
from a real run, and a whole demo run generated in those formats), and its runner against a
fake kubectl (a script: failing the ways kubectl fails, or serving recorded polls and a
port-forward) with a real, short Locust run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from gpu_analytics_tools.cluster.cli import app as cluster_app
from gpu_analytics_tools.cluster.hpa_demo import record as hpa_record
from gpu_analytics_tools.cluster.hpa_demo import report, timeline

DATA = Path(__file__).parent / "testdata" / "demo-hpa"
RUN = DATA / "run"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def objects(name: str) -> hpa_record.Objects:
    return hpa_record.parse_objects((DATA / name).read_text())


# --- kubectl output ---------------------------------------------------------------------


def test_hpas_and_deployments_without_metrics_recorded_from_the_api_server() -> None:
    parsed = objects("hpa-deployment-no-metrics.json")
    assert sorted(parsed.hpas) == ["processor", "producer"]
    assert sorted(parsed.deployments) == ["processor", "producer"]
    hpa = parsed.hpas["processor"]
    assert (hpa.target, hpa.min_replicas, hpa.max_replicas, hpa.cpu_target_pct) == (
        "processor",
        1,
        6,
        70,
    )
    # No metrics API: currentMetrics is [{"type": ""}], desiredReplicas 0 (never computed).
    assert hpa.cpu_pct is None and hpa.current_replicas == 1 and hpa.desired_replicas is None
    assert hpa.problem.startswith("ScalingActive False: FailedGetResourceMetric: ")
    assert parsed.deployments["processor"].ready_replicas == 1


def test_hpa_list_while_scaling_up() -> None:
    parsed = objects("hpa-scaling.json")
    processor, producer = parsed.hpas["processor"], parsed.hpas["producer"]
    assert (processor.cpu_pct, processor.desired_replicas, processor.current_replicas) == (
        197,
        3,
        2,
    )
    assert processor.problem == ""  # ScalingLimited True (ScaleUpLimit) is no failure
    assert (producer.cpu_pct, producer.max_replicas, producer.desired_replicas) == (23, 3, 1)
    assert parsed.deployments == {}


def test_deployment_list_while_pods_start() -> None:
    parsed = objects("deploy-scaling.json")
    assert parsed.hpas == {}
    assert parsed.deployments["processor"] == hpa_record.DeploymentState("processor", 3, 2)
    assert parsed.deployments["producer"].ready_replicas == 1


def test_a_single_object_and_other_kinds() -> None:
    listed = json.loads((DATA / "hpa-scaling.json").read_text())
    single = hpa_record.parse_objects(json.dumps(listed["items"][0]))
    assert list(single.hpas) == ["processor"]
    listed["items"].append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}})
    assert sorted(hpa_record.parse_objects(listed).hpas) == ["processor", "producer"]
    no_status = listed["items"][0] | {"status": {}}
    hpa = hpa_record.parse_hpa(no_status)
    assert (hpa.cpu_pct, hpa.current_replicas, hpa.desired_replicas) == (None, None, None)


def _hpa_item() -> dict[str, Any]:
    item: dict[str, Any] = json.loads((DATA / "hpa-scaling.json").read_text())["items"][0]
    return item


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i["spec"].pop("maxReplicas"),
            "HorizontalPodAutoscaler processor: no maxReplicas",
        ),
        (lambda i: i.update(apiVersion="autoscaling/v1"), "not autoscaling/v2"),
        (lambda i: i["status"].update(currentReplicas="2"), "currentReplicas: expected an integer"),
        (
            lambda i: i["status"]["currentMetrics"][0]["resource"]["current"].update(
                averageUtilization=1.5
            ),
            "cpu current averageUtilization: expected an integer",
        ),
    ],
)
def test_malformed_hpa_is_a_clear_error(change: Any, message: str) -> None:
    item = _hpa_item()
    change(item)
    with pytest.raises(hpa_record.DemoError, match=message):
        hpa_record.parse_objects({"apiVersion": "v1", "kind": "List", "items": [item]})


def test_output_that_is_not_kubectl_json() -> None:
    with pytest.raises(hpa_record.DemoError, match="kubectl output is not JSON"):
        hpa_record.parse_objects(
            "NAME        REFERENCE   TARGETS\nprocessor   Deployment/processor"
        )
    with pytest.raises(hpa_record.DemoError, match="not a Kubernetes object or List"):
        hpa_record.parse_objects("[]")


# --- Locust's stats history ----------------------------------------------------------------


def test_locust_history_recorded_from_a_real_run() -> None:
    text = (DATA / "locust_stats_history-short.csv").read_text()
    samples = hpa_record.parse_locust_history(text)
    aggregated = [line for line in text.splitlines() if ",Aggregated," in line]
    assert len(samples) == len({line.split(",")[0] for line in aggregated}) == 7
    assert [s.time for s in samples] == sorted(s.time for s in samples)
    assert samples[0].p95_ms is None and samples[0].requests == 0  # N/A before any response
    assert [s.users for s in samples[:4]] == [0, 2, 4, 6]
    assert samples[-1].rps > 0 and samples[-1].p95_ms is not None and samples[-1].failures == 0
    assert samples[-1].requests > samples[3].requests


def test_locust_history_with_a_wrong_column_is_a_clear_error() -> None:
    text = (DATA / "locust_stats_history-short.csv").read_text()
    header, _, rest = text.partition("\n")
    with pytest.raises(hpa_record.DemoError, match=r"not a Locust stats history .*'95%'"):
        hpa_record.parse_locust_history(header.replace(",95%,", ",96%,") + "\n" + rest)
    stats_csv = "Type,Name,Request Count,Failure Count,Median Response Time\n"
    with pytest.raises(hpa_record.DemoError, match="no column 'Timestamp'"):
        hpa_record.parse_locust_history(stats_csv, "locust_stats.csv")
    lines = text.splitlines()
    short_row = lines[0] + "\n" + lines[1] + "\n" + ",".join(lines[4].split(",")[:22]) + "\n"
    with pytest.raises(hpa_record.DemoError, match=r"history.csv:3: 22 fields, the header has 24"):
        hpa_record.parse_locust_history(short_row, "history.csv")
    with pytest.raises(hpa_record.DemoError, match="column 'Requests/s' is not a number: 'fast'"):
        hpa_record.parse_locust_history(
            text.replace(",Aggregated,0.000000,", ",Aggregated,fast,", 1)
        )


def test_locust_history_cut_short_while_locust_writes() -> None:
    text = (DATA / "locust_stats_history-short.csv").read_text()
    whole = hpa_record.parse_locust_history(text)
    cut = hpa_record.parse_locust_history(text[: text.rindex(",Aggregated,") + 20])
    assert cut == whole[:-1]
    with pytest.raises(hpa_record.DemoError, match="empty"):
        hpa_record.parse_locust_history("")


# --- timeline, summary, plot -----------------------------------------------------------------


def recorded_timeline() -> tuple[
    list[hpa_record.Poll], list[timeline.TimelineRow], hpa_record.RunRecord
]:
    record = hpa_record.RunRecord.read(RUN)
    polls = hpa_record.read_polls(RUN / "polls.jsonl", "processor")
    samples = hpa_record.read_locust_history(RUN / hpa_record.HISTORY_FILE)
    return polls, timeline.merge(polls, samples, record.started, record.load_end), record


def test_polls_and_history_merge_into_one_row_per_poll() -> None:
    polls, rows, record = recorded_timeline()
    assert len(rows) == len(polls) == 112
    assert [r.elapsed_s for r in rows] == sorted(r.elapsed_s for r in rows)
    first = rows[0]
    assert (first.users, first.rps, first.current_replicas, first.cpu_pct) == (0, 0.0, 1, 12)
    spike = next(r for r in rows if r.elapsed_s >= 450)
    assert spike.users == 120 and spike.rps is not None and spike.rps > 500
    assert (spike.cpu_pct, spike.cpu_target_pct, spike.desired_replicas) == (77, 70, 6)
    failed = next(r for r in rows if r.current_replicas is None)
    assert failed.users == 60 and failed.cpu_pct is None and failed.ready_replicas is None
    assert polls[rows.index(failed)].error.endswith("net/http: TLS handshake timeout")
    assert record.load_end is not None
    after = [r for r in rows if r.elapsed_s >= record.load_end - record.started]
    assert after and all(r.users == 0 and r.rps == 0.0 and r.p95_ms is None for r in after)
    assert rows[-1].time == "2025-12-01T12:18:43Z"


def test_history_rows_older_than_max_age_are_not_used() -> None:
    polls, _, record = recorded_timeline()
    samples = hpa_record.read_locust_history(RUN / hpa_record.HISTORY_FILE)
    rows = timeline.merge(polls, samples[:30], record.started, None)  # history stops at ~5 min
    late = [r for r in rows if 320 < r.elapsed_s < 700]
    assert late and all(r.users is None and r.rps is None for r in late)


def test_summary_of_the_recorded_run() -> None:
    polls, rows, record = recorded_timeline()
    assert record.load_end is not None
    summary = report.summarize("processor", rows, polls, round(record.load_end - record.started, 1))
    assert summary.scaled
    assert summary.start_replicas == 1 and summary.first_scale_up_s == 100.5
    assert (summary.peak_replicas, summary.peak_at_s) == (6, 460.5)
    assert summary.back_to_min_s == 1110.5 and summary.load_end_s == 720.8
    assert (summary.polls, summary.failed_polls, summary.peak_users) == (112, 1, 120)
    assert (summary.min_replicas, summary.max_replicas, summary.cpu_target_pct) == (1, 6, 70)
    text = report.summary_text(summary, "pipeline")
    assert text.splitlines() == [
        "HPA pipeline/processor (1..6 replicas, CPU target 70%): 112 polls over 18m30s, "
        "load for 12m01s, 1 failed poll",
        "first scale-up   1m40s after the load started (from 1 replica)",
        "peak replicas    6 at 7m40s",
        "back to minimum  18m30s (1 replica, 6m30s after the load ended)",
        "load             peak 120 users, 555.6 req/s, p95 up to 130 ms, CPU up to 197%",
    ]


def test_not_back_to_minimum_within_the_run() -> None:
    polls, rows, _ = recorded_timeline()
    summary = report.summarize("processor", rows[:90], polls[:90], 720.8)
    assert summary.scaled and summary.back_to_min_s is None
    assert "back to minimum  not within the run (above 1 replica at the end)" in (
        report.summary_text(summary)
    )


def _polls_of(snapshot: hpa_record.Objects, count: int, **changes: Any) -> list[hpa_record.Poll]:
    hpa = replace(snapshot.hpas["processor"], **changes)
    objects = hpa_record.Objects({"processor": hpa}, snapshot.deployments)
    return [hpa_record.poll_from(1000.0 + 10 * i, objects, "processor") for i in range(count)]


def test_never_scaled_without_metrics() -> None:
    polls = _polls_of(objects("hpa-deployment-no-metrics.json"), 8)
    rows = timeline.merge(polls, [], start=1000.0, load_end=1050.0)
    summary = report.summarize("processor", rows, polls, 50.0)
    assert not summary.scaled and summary.peak_replicas == 1
    assert summary.first_scale_up_s is None and summary.back_to_min_s is None
    assert "never scaled up: the HPA reported no CPU utilization (ScalingActive False: " in (
        report.summary_text(summary)
    )


def test_never_scaled_below_target() -> None:
    snapshot = hpa_record.Objects(
        objects("hpa-scaling.json").hpas, objects("deploy-scaling.json").deployments
    )
    polls = _polls_of(snapshot, 6, cpu_pct=41, current_replicas=1, desired_replicas=1)
    summary = report.summarize("processor", timeline.merge(polls, [], 1000.0), polls)
    assert not summary.scaled and summary.peak_cpu_pct == 41
    assert "never scaled up: stayed at 1 replica, CPU peaked at 41% against a 70% target" in (
        report.summary_text(summary)
    )


def test_render_writes_timeline_summary_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(RUN, out)
    summary, rows = report.render(out)
    with (out / "timeline.csv").open() as handle:
        header = handle.readline().strip().split(",")
    assert header == [
        "elapsed_s",
        "time",
        "users",
        "rps",
        "failures_per_s",
        "p95_ms",
        "cpu_pct",
        "cpu_target_pct",
        "desired_replicas",
        "current_replicas",
        "ready_replicas",
    ]
    assert timeline.read_timeline(out / "timeline.csv") == rows and len(rows) == 112
    saved = json.loads((out / "summary.json").read_text())
    assert saved["first_scale_up_s"] == 100.5 and saved["peak_replicas"] == 6
    assert saved["back_to_min_s"] == 1110.5 and saved["scaled"] is True
    assert (out / "summary.txt").read_text() == report.summary_text(summary, "pipeline") + "\n"
    png = (out / "replicas.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000


def test_render_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(RUN, out)
    history = out / hpa_record.HISTORY_FILE
    history.write_text(history.read_text().replace("User Count", "Users", 1))
    with pytest.raises(
        hpa_record.DemoError, match=r"locust_stats_history.csv: .*no column 'User Count'"
    ):
        report.render(out)
    (out / "polls.jsonl").write_text('{"time": 1, "output": {"kind": "List", "items": 3}}\n')
    with pytest.raises(
        hpa_record.DemoError, match=r"polls.jsonl:1: kubectl output: a List without"
    ):
        report.render(out)


# --- the runner against a fake kubectl ----------------------------------------------------

FAKE_KUBECTL = """\
#!{python}
# A fake kubectl for demo-hpa: `config current-context`, `get` (the recorded polls in
# $FAKE_DIR/polls.jsonl, one per call, then the last again) and `port-forward` (an HTTP
# server on the local port answering 200, printing what kubectl prints).
import http.server, json, os, pathlib, sys

args = sys.argv[1:]
state = pathlib.Path(os.environ["FAKE_DIR"])
if "config" in args:
    print("fake-context")
elif "get" in args:
    polls = (state / "polls.jsonl").read_text().splitlines()
    count = state / "count"
    n = int(count.read_text()) if count.exists() else 0
    count.write_text(str(n + 1))
    print(json.dumps(json.loads(polls[min(n, len(polls) - 1)])["output"]))
elif "port-forward" in args:
    (state / "port-forward.pid").write_text(str(os.getpid()))
    local = int(args[-1].split(":")[0])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{{}}")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", local), Handler)
    print(f"Forwarding from 127.0.0.1:{{local}} -> 8080", flush=True)
    server.serve_forever()
"""

# A short shape for the runner's tests: the HpaDemo shape takes 12 minutes.
SHORT_LOCUSTFILE = """\
from locust import HttpUser, LoadTestShape, constant, task


class Reader(HttpUser):
    wait_time = constant(0.1)

    @task
    def ready(self):
        self.client.get("/readyz")


class Short(LoadTestShape):
    def tick(self):
        elapsed = self.get_run_time()
        if elapsed < {seconds}:
            return (2 if elapsed < {seconds} / 2 else 4), 4
        return None
"""


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def failing_kubectl(tmp_path: Path, stderr: str, stdout: str = "", code: int = 1) -> Path:
    (tmp_path / "stderr").write_text(stderr)
    (tmp_path / "stdout").write_text(stdout)
    return script(
        tmp_path / "kubectl",
        f"#!/usr/bin/env bash\nset -euo pipefail\ncat '{tmp_path}/stdout'\n"
        f"cat '{tmp_path}/stderr' >&2\nexit {code}\n",
    )


def invoke(tmp_path: Path, kubectl: Path | str, *args: str) -> Any:
    env = {"KUBECTL": str(kubectl), "FAKE_DIR": str(tmp_path)}
    return CliRunner().invoke(
        cluster_app, ["demo-hpa", "--out", str(tmp_path / "out"), *args], env=env
    )


def test_missing_kubectl_binary(tmp_path: Path) -> None:
    result = invoke(tmp_path, tmp_path / "no-such-kubectl")
    assert result.exit_code == 1
    assert f"demo-hpa: error: KUBECTL={tmp_path}/no-such-kubectl is not an executable" in (
        result.stderr
    )


def test_missing_context(tmp_path: Path) -> None:
    # kubectl 1.36 prints it twice, no prefix (recorded: `--context nope get hpa,deployment`).
    kubectl = failing_kubectl(tmp_path, 'context "nope" does not exist\n' * 2)
    result = invoke(tmp_path, kubectl, "--context", "nope")
    assert result.exit_code == 1
    assert (
        "demo-hpa: error: cannot read namespace pipeline of context nope: kubectl get "
        'hpa,deployment -o json --request-timeout=20s failed (1): context "nope" does not exist'
    ) in result.stderr
    assert not (tmp_path / "out").exists()


def test_no_current_context(tmp_path: Path) -> None:
    kubectl = failing_kubectl(tmp_path, "error: current-context is not set\n")
    result = invoke(tmp_path, kubectl)
    assert result.exit_code == 1
    assert "error: no kube context (kubectl config current-context failed (1): error: " in (
        result.stderr
    )
    assert "pass --context or set KUBECONFIG" in result.stderr


def test_unreachable_cluster(tmp_path: Path) -> None:
    klog = (
        'E1201 12:09:29.104192   11574 memcache.go:265] "Unhandled Error" err="couldn\'t get '
        'current server API group list: Get \\"https://127.0.0.1:1/api?timeout=3s\\": dial tcp '
        '127.0.0.1:1: connect: connection refused"\n'
    )
    refused = (
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host "
        "or port?\n"
    )
    kubectl = failing_kubectl(tmp_path, klog * 3 + refused)
    result = invoke(tmp_path, kubectl, "--context", "k3d-gpu-analytics")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"failed (1): {refused.strip()}")


def test_no_hpa_in_the_namespace(tmp_path: Path) -> None:
    empty = '{"apiVersion": "v1", "items": [], "kind": "List", "metadata": {}}'
    kubectl = failing_kubectl(tmp_path, "", stdout=empty, code=0)
    result = invoke(tmp_path, kubectl, "--context", "k3d-gpu-analytics", "--namespace", "demo")
    assert result.exit_code == 1
    assert (
        "error: no HorizontalPodAutoscaler processor in namespace demo of context "
        "k3d-gpu-analytics (found: none)"
    ) in result.stderr


def fake_kubectl(tmp_path: Path, polls: list[str]) -> Path:
    (tmp_path / "polls.jsonl").write_text("\n".join(polls) + "\n")
    return script(tmp_path / "kubectl", FAKE_KUBECTL.format(python=sys.executable))


def test_port_forward_that_fails(tmp_path: Path) -> None:
    polls = (RUN / "polls.jsonl").read_text().splitlines()
    kubectl = fake_kubectl(tmp_path, polls[:1])
    # What kubectl port-forward printed against the simulation (no kubelet behind its pods).
    kubectl.write_text(
        kubectl.read_text().replace(
            'elif "port-forward" in args:\n',
            'elif "port-forward" in args:\n    sys.stderr.write("error: error upgrading '
            "connection: unable to upgrade connection: error dialing backend: dial tcp "
            '10.42.0.1:10250: connect: network is unreachable\\n")\n    sys.exit(1)\n',
        )
    )
    result = invoke(tmp_path, kubectl)
    assert result.exit_code == 1
    assert (
        "error: kubectl port-forward svc/processor failed (1): error: error upgrading "
        "connection: unable to upgrade connection"
    ) in result.stderr
    assert not (tmp_path / "out" / "run.json").exists()  # nothing ran: no report


def short_run_args(tmp_path: Path, seconds: float) -> list[str]:
    locustfile = tmp_path / "short_shape.py"
    locustfile.write_text(SHORT_LOCUSTFILE.format(seconds=seconds))
    return ["--interval", "0.5", "--settle", "5", "--locustfile", str(locustfile)]


def test_a_short_demo_against_the_fake_kubectl(tmp_path: Path) -> None:
    lines = (RUN / "polls.jsonl").read_text().splitlines()
    # 1 replica, the scale-up (2 of 3, then 4 of 5), 6, and back at 1.
    kubectl = fake_kubectl(tmp_path, [lines[i] for i in (0, 0, 9, 10, 12, 15, 50, 111)])
    result = invoke(tmp_path, kubectl, *short_run_args(tmp_path, 4))
    out = tmp_path / "out"
    assert result.exit_code == 0, result.stderr + (out / "locust.log").read_text()[-3000:]
    assert "demo-hpa: context fake-context, namespace pipeline: HPA processor" in result.stderr
    assert "Locust finished (0)" in result.stderr and "processor is back at 1 replica" in (
        result.stderr
    )
    record = hpa_record.RunRecord.read(out)
    assert record.load_end is not None and record.locust_exit == 0 and not record.interrupted
    rows = timeline.read_timeline(out / "timeline.csv")
    assert len(rows) >= 6 and rows[-1].current_replicas == 1
    assert max(r.users or 0 for r in rows) == 4 and max(r.rps or 0 for r in rows) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scaled"] and summary["peak_replicas"] == 6
    assert summary["back_to_min_s"] is not None
    assert "first scale-up" in result.stdout and "peak replicas    6" in result.stdout
    assert (out / "replicas.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "locust.html").exists()
    pid = int((tmp_path / "port-forward.pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_ctrl_c_stops_locust_and_the_port_forward_and_still_reports(tmp_path: Path) -> None:
    lines = (RUN / "polls.jsonl").read_text().splitlines()
    kubectl = fake_kubectl(tmp_path, [lines[i] for i in (0, 9, 10, 12)])
    cli = str(Path(sys.executable).with_name("gpu-analytics"))
    out = tmp_path / "out"
    cmd = [cli, "cluster", "demo-hpa", "--out", str(out), *short_run_args(tmp_path, 120)]
    env = {**os.environ, "KUBECTL": str(kubectl), "FAKE_DIR": str(tmp_path)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    try:
        while "Locust started" not in seen:
            line = proc.stderr.readline()
            assert line, f"exited ({proc.wait()}) before Locust started:\n{seen}"
            seen += line
        # Locust handles SIGTERM once it runs: its first row of stats history says so.
        history = out / hpa_record.HISTORY_FILE
        deadline = time.monotonic() + 60
        while not history.exists() or not hpa_record.read_locust_history(history):
            assert proc.poll() is None and time.monotonic() < deadline, seen
            time.sleep(0.2)
        time.sleep(1)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # kubectl port-forward and locust
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)
        stderr = seen + rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted: stopping Locust and the port-forward" in stderr
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"
    record = hpa_record.RunRecord.read(out)
    # Locust stopped by the CLI (SIGTERM), not killed with it: its exit code, its HTML report.
    assert record.interrupted and record.load_end is not None and record.locust_exit == 0
    assert (out / "locust.html").exists()
    assert "first scale-up" in stdout
    assert len(timeline.read_timeline(out / "timeline.csv")) >= 2
    assert (out / "replicas.png").read_bytes().startswith(PNG_MAGIC)
