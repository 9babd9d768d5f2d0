"""`gpu-analytics dev` (make dev): the whole pipeline on this machine, in the foreground.

Kafka + MongoDB-wire server, the declared topics, the processor on :8080, a synthetic producer
(metrics on :9100) and, when `make setup` built it, Prometheus on :9090 scraping both with the
project's rules loaded and the targets labelled as the ServiceMonitors label them in the cluster
(job, namespace, service, pod). Ctrl-C stops everything in reverse order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gpu_analytics_tools.observability.prometheus import write_config
from gpu_analytics_tools.stack.paths import default_state_dir, tools_dir
from gpu_analytics_tools.stack.process import StopRequest, ensure_port_free, spawn, stop_child
from gpu_analytics_tools.stack.stack import LocalStack, StackError
from gpu_analytics_tools.stack.topics import ensure_topics

HOST = "127.0.0.1"


@dataclass
class _Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def _say(message: str) -> None:
    sys.stderr.write(f"dev: {message}\n")
    sys.stderr.flush()


def run_dev() -> int:
    state = default_state_dir()
    processor_port = int(os.environ.get("HTTP_PORT", "8080"))
    producer_port = int(os.environ.get("METRICS_PORT", "9100"))
    prometheus_port = int(os.environ.get("PROMETHEUS_PORT", "9090"))
    prometheus = tools_dir() / "bin" / "prometheus"
    stack = LocalStack(state_dir=state)
    try:
        ensure_port_free(HOST, processor_port, "processor", "HTTP_PORT")
        ensure_port_free(HOST, producer_port, "producer metrics", "METRICS_PORT")
        if prometheus.exists():
            ensure_port_free(HOST, prometheus_port, "Prometheus", "PROMETHEUS_PORT")
        stack.start(progress=_say)
    except StackError as exc:
        _say(f"error: {exc}")
        return 1
    services: list[_Service] = []
    stop = StopRequest()
    try:
        created = ensure_topics(stack.kafka.bootstrap_servers)
        _say(f"topics ready ({', '.join(created) or 'all existed'})")
        env = {
            **os.environ,
            **stack.env(),
            "HTTP_HOST": HOST,
            "HTTP_PORT": str(processor_port),
            "METRICS_HOST": HOST,
            "METRICS_PORT": str(producer_port),
            "PRODUCER_SOURCE": os.environ.get("PRODUCER_SOURCE", "synthetic"),
            "PRODUCER_RATE": os.environ.get("PRODUCER_RATE", "20"),
            # for PRODUCER_TOKEN_TRANSPORT=otlp: token usage as OTLP spans to this processor
            "PRODUCER_OTLP_ENDPOINT": f"http://{HOST}:{processor_port}/v1/traces",
        }
        cli = shutil.which("gpu-analytics") or str(Path(sys.executable).with_name("gpu-analytics"))
        for name in ("processor", "producer"):
            log = state / f"{name}.log"
            services.append(_Service(name, spawn([cli, name], log, cwd=state, env=env), log))
        if prometheus.exists():
            config = write_config(
                state,
                {"processor": f"{HOST}:{processor_port}", "producer": f"{HOST}:{producer_port}"},
            )
            cmd = [
                str(prometheus),
                f"--config.file={config}",
                f"--storage.tsdb.path={state / 'prometheus-data'}",
                f"--web.listen-address={HOST}:{prometheus_port}",
            ]
            log = state / "prometheus.log"
            services.append(_Service("prometheus", spawn(cmd, log, cwd=state), log))
        lines = [
            f"processor API   http://{HOST}:{processor_port}/docs",
            f"processor       http://{HOST}:{processor_port}/api/v1/stats",
            f"producer        http://{HOST}:{producer_port}/metrics",
            f"Kafka           {stack.kafka.bootstrap_servers}",
            f"MongoDB         {stack.mongo.uri}",
        ]
        if prometheus.exists():
            lines.append(f"Prometheus      http://{HOST}:{prometheus_port}/graph")
        lines.append(f"logs            {state}/*.log")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        _say("running; press Ctrl-C to stop")
        while not stop.requested:
            for service in services:
                if service.proc.poll() is not None:
                    _say(f"{service.name} exited ({service.proc.returncode}); see {service.log}")
                    stop.requested = True
            time.sleep(0.5)
    finally:
        _say("stopping")
        for service in reversed(services):
            stop_child(service.proc, 30)
        stack.stop()
        _say("stopped")
    return 0
