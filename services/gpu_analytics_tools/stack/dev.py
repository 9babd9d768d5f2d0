"""`gpu-analytics dev` (make dev): the whole pipeline on this machine, in the foreground.

Kafka + MongoDB-wire server, the declared topics, the processor on :8080, a synthetic producer
(metrics on :9100) and, when `make setup` built it, Prometheus on :9090 scraping both with the
project's rules loaded and the targets labelled as the ServiceMonitors label them in the cluster
(job, namespace, service, pod). Ctrl-C stops everything in reverse order.
"""

from __future__ import annotations

import os
import sys
import time

from gpu_analytics_tools.stack.paths import default_state_dir
from gpu_analytics_tools.stack.pipeline import HOST, LocalPipeline, prometheus_binary
from gpu_analytics_tools.stack.process import StopRequest, ensure_port_free
from gpu_analytics_tools.stack.stack import LocalStack, StackError, StackPorts
from gpu_analytics_tools.stack.topics import ensure_topics


def _say(message: str) -> None:
    sys.stderr.write(f"dev: {message}\n")
    sys.stderr.flush()


def run_dev() -> int:
    state = default_state_dir()
    processor_port = int(os.environ.get("HTTP_PORT", "8080"))
    producer_port = int(os.environ.get("METRICS_PORT", "9100"))
    prometheus_port = int(os.environ.get("PROMETHEUS_PORT", "9090"))
    with_prometheus = prometheus_binary() is not None
    # the same variables as `gpu-analytics stack up`
    ports = StackPorts(
        kafka=int(os.environ.get("KAFKA_PORT", "9092")),
        kafka_controller=int(os.environ.get("KAFKA_CONTROLLER_PORT", "9093")),
        mongo=int(os.environ.get("MONGO_PORT", "27017")),
        kafka_metrics=int(os.environ.get("KAFKA_METRICS_PORT", "9404")),
    )
    stack = LocalStack(state_dir=state, ports=ports)
    try:
        ensure_port_free(HOST, processor_port, "processor", "HTTP_PORT")
        ensure_port_free(HOST, producer_port, "producer metrics", "METRICS_PORT")
        if with_prometheus:
            ensure_port_free(HOST, prometheus_port, "Prometheus", "PROMETHEUS_PORT")
        stack.start(progress=_say)
    except StackError as exc:
        _say(f"error: {exc}")
        return 1
    stop = StopRequest()
    pipeline: LocalPipeline | None = None
    try:
        created = ensure_topics(stack.kafka.bootstrap_servers)
        _say(f"topics ready ({', '.join(created) or 'all existed'})")
        env = {
            **os.environ,
            **stack.env(),
            "PRODUCER_SOURCE": os.environ.get("PRODUCER_SOURCE", "synthetic"),
            "PRODUCER_RATE": os.environ.get("PRODUCER_RATE", "20"),
            # for PRODUCER_TOKEN_TRANSPORT=otlp: token usage as OTLP spans to this processor
            "PRODUCER_OTLP_ENDPOINT": f"http://{HOST}:{processor_port}/v1/traces",
        }
        pipeline = LocalPipeline(
            state, env, processor_port, producer_port,
            prometheus_port if with_prometheus else None,
            kafka_metrics=stack.kafka.metrics_address,
        )  # fmt: skip
        pipeline.start()
        lines = [
            f"processor API   http://{HOST}:{processor_port}/docs",
            f"processor       http://{HOST}:{processor_port}/api/v1/stats",
            f"producer        http://{HOST}:{producer_port}/metrics",
            f"Kafka           {stack.kafka.bootstrap_servers}",
            *(
                [f"Kafka metrics   http://{address}/metrics"]
                if (address := stack.kafka.metrics_address)
                else []
            ),
            f"MongoDB         {stack.mongo.uri}",
        ]
        if pipeline.prometheus_url:
            lines.append(f"Prometheus      {pipeline.prometheus_url}/graph")
        lines.append(f"logs            {state}/*.log")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        _say("running; press Ctrl-C to stop")
        while not stop.requested:
            for service in pipeline.exited():
                _say(f"{service.name} exited ({service.proc.returncode}); see {service.log}")
                stop.requested = True
            time.sleep(0.5)
    finally:
        _say("stopping")
        if pipeline is not None:
            pipeline.stop()
        stack.stop()
        _say("stopped")
    return 0
