"""`make verify-observability`: every rule and dashboard query, evaluated on a real Prometheus
scraping the running pipeline.

Starts the processor, a synthetic producer and Prometheus (the cluster's release, built by
`make setup`) with all our rules and the targets labelled as the ServiceMonitors label them;
drives traffic (HTTP ingest of v1 and legacy payloads, requests that get 4xx, invalid records
that are dead-lettered); then:

- every rule group loads, and every rule evaluates without error;
- every recording rule, alert expression and dashboard query (template variables substituted)
  evaluates without error on the HTTP API;
- every `gpu_analytics_`, `slo:` or `up{...}` selector in them returns data, and so does every
  recording rule and dashboard query that names one (an alert's own result is empty while it is
  quiet, so for alerts the selectors carry the check);
- the Loki panels select only labels the Alloy config sets, and use only JSON fields that real
  log lines of the services they select contain (the lines of this run).

The selectors are read from each expression's syntax tree (promql-parser, the Python binding of
the Rust PromQL parser).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import promql_parser
import yaml
from aiokafka import AIOKafkaProducer

from gpu_analytics_tools.observability.prometheus import (
    PrometheusApi,
    prometheus_rules,
)
from gpu_analytics_tools.observability.queries import (
    Query,
    boards,
    dashboard_queries,
    rule_queries,
    substitute,
)
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.stack.pipeline import LocalPipeline, prometheus_binary
from gpu_analytics_tools.stack.process import free_port
from gpu_analytics_tools.stack.topics import ensure_topics
from gpu_analytics_tools.testing import events

SCRAPE = "2s"

# Our series, Sloth's, and `up` of our targets (a ProcessorDown on labels the local targets
# lack would fire falsely).
LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)$")
STREAM = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"')
JSON_FIELD = re.compile(r"\|\s*(\w+)\s*(?:=~|!~|!=|=|>|<)|\{\{\s*\.(\w+)\s*\}\}")

# What must have data before the checks start (the ends of the recording-rule chains).
SETTLED = {
    "slo:period_error_budget_remaining:ratio": 3,
    "gpu_analytics:llm_cost_usd:rate5m": 1,
    "gpu_analytics_events_invalid_total": 1,
    "gpu_analytics:dead_letter_ratio:rate5m": 1,
}

# Series whose data these checks prove: ours, Sloth's, the broker's JMX exporter (which the
# local broker loads too) and the MongoDB exporter's; `up{...}` of our targets besides.
OUR_PREFIXES = ("gpu_analytics_", "slo:", "kafka_", "mongodb_")

# Selectors (a metric or a prefix of metrics) that a local run cannot give data: said here with
# the reason, never skipped silently.
NO_LOCAL_DATA = {
    "gpu_analytics_nvml_errors_total": "NVML errors need an NVML producer on a GPU node",
    "mongodb_": "the MongoDB exporter needs a real mongod: the local MongoDB-wire server "
    "answers none of its serverStatus and replSetGetStatus commands; GitHub CI's mongo "
    "service runs it (ci.yml)",
}
NO_BROKER_METRICS = "the broker runs without the JMX exporter agent (an outside broker)"


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    with_data: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [
            f"queries evaluated: {len(self.checked)}",
            f"queries and selectors with data: {len(self.with_data)}",
            *(f"note: {n}" for n in self.notes),
            *(f"FAIL: {f}" for f in self.failures),
            "observability: OK" if self.ok else f"observability: {len(self.failures)} failures",
        ]
        return "\n".join(lines)


def alloy_labels(root: Path | None = None) -> set[str]:
    """The stream labels Alloy sets (target_label of its relabel rules)."""
    values = yaml.safe_load(((root or repo_root()) / "monitoring/alloy/values.yaml").read_text())
    content = values["alloy"]["configMap"]["content"]
    return set(re.findall(r'target_label\s*=\s*"(\w+)"', content))


def check_logql(
    queries: list[Query], labels: set[str], fields: dict[str, set[str]], report: Report
) -> None:
    """Stream selectors use only Alloy's labels; JSON fields exist in real lines of each
    service (app) the selector can match."""
    for query in queries:
        report.checked.append(query.source)
        streams = STREAM.findall(query.expr.split("|")[0] if "|" in query.expr else query.expr)
        used = {label for stream in streams for label in MATCHER.findall(stream)}
        for label in sorted(used - labels):
            report.failures.append(f"{query.source}: label {label!r} is not set by Alloy")
        apps = [app for app in fields if re.search(rf"\b{app}\b", query.expr)]
        wanted = {a or b for a, b in JSON_FIELD.findall(query.expr)} - labels
        for app in apps:
            for missing in sorted(wanted - fields[app]):
                report.failures.append(
                    f"{query.source}: no {app} log line has the JSON field {missing!r}"
                )


def log_fields(log_file: Path) -> set[str]:
    """The keys of the JSON log lines in `log_file`."""
    keys: set[str] = set()
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            keys |= set(record)
    return keys


def our_selectors(expr: str) -> set[tuple[str, str]]:
    """(metric, selector) of each selector of our series in a PromQL expression: names of our
    prefixes (OUR_PREFIXES) and `up{...}` of our targets (a bare `up` is the cluster's).
    The selector keeps its matchers, not its offset or @."""
    found: set[tuple[str, str]] = set()

    def visit(node: promql_parser.Expr) -> None:
        if not isinstance(node, promql_parser.VectorSelector) or not node.name:
            return
        matchers = str(node.matchers)
        ours = node.name.startswith(OUR_PREFIXES)
        if ours or (node.name == "up" and matchers != "{}"):
            found.add((node.name, node.name + ("" if matchers == "{}" else matchers)))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def no_local_data(selector: str, metric: str, without: dict[str, str]) -> str | None:
    """Why `selector` can have no data here, if it cannot: NO_LOCAL_DATA, then `without`
    (selector substrings or metric prefixes for what this run lacks)."""
    for key, why in {**NO_LOCAL_DATA, **without}.items():
        if metric.startswith(key) or (key.startswith("up{") and key in selector.replace(" ", "")):
            return why
    return None


def check_promql(
    prom: PrometheusApi,
    queries: list[Query],
    report: Report,
    without: dict[str, str] | None = None,
) -> None:
    for query in queries:
        report.checked.append(query.source)
        expr = substitute(query.expr)
        if match := LABEL_VALUES.match(expr):
            error, count = prom.label_values(match["label"], match["metric"])
        else:
            error, count = prom.query(expr)
        if error:
            report.failures.append(f"{query.source}: {error}\n    {expr}")
            continue
        try:
            selectors = our_selectors(match["metric"] if match else expr)
        except ValueError as exc:  # Prometheus took it, the parser did not: say so
            report.failures.append(f"{query.source}: promql-parser: {exc}\n    {expr}")
            continue
        if not selectors:
            continue  # kube-state-metrics, cAdvisor: a cluster's, not ours to prove here
        missing = {
            sel: why
            for metric, sel in selectors
            if (why := no_local_data(sel, metric, without or {})) is not None
        }
        if query.kind != "alert":
            if count:
                report.with_data.append(query.source)
            elif missing:
                report.notes.append(
                    f"{query.source}: no local data ({'; '.join(missing.values())})"
                )
            else:
                report.failures.append(f"{query.source}: no data\n    {expr}")
        for _metric, selector in sorted(selectors):
            if selector in missing:
                report.notes.append(f"{selector}: no local data ({missing[selector]})")
                continue
            error, count = prom.query(f"count({selector})")
            if error or not count:
                why = f" ({error})" if error else ""
                report.failures.append(f"{query.source}: selector {selector} has no data{why}")
            else:
                report.with_data.append(f"{query.source} :: {selector}")


def check_rule_health(prom: PrometheusApi, expected_groups: int, report: Report) -> None:
    groups = prom.rules()
    if len(groups) != expected_groups:
        report.failures.append(
            f"Prometheus loaded {len(groups)} rule groups, not {expected_groups}"
        )
    for group in groups:
        for rule in group["rules"]:
            if rule.get("health") != "ok":
                report.failures.append(
                    f"rule {group['name']} / {rule['name']}: {rule.get('health')} "
                    f"{rule.get('lastError', '')}"
                )


# ---- the run -----------------------------------------------------------------------------


def _gpu(i: int) -> dict[str, Any]:
    return events.gpu_metric(f"GPU-verify-{i}", host="verify", gpu_index=i, utilization=40.0 + i)


def _token(i: int) -> dict[str, Any]:
    return events.token_usage(
        "verify-model", host="verify", gpu_uuid=f"GPU-verify-{i % 2}", input_tokens=100 + i,
        output_tokens=20, status="error" if i % 10 == 0 else "ok",
    )  # fmt: skip


async def drive_traffic(
    processor_url: str, bootstrap: str, topics: dict[str, str], rounds: int = 5
) -> None:
    """Good events, legacy payloads, requests that get 4xx and records that are dead-lettered."""
    async with httpx.AsyncClient(base_url=processor_url, timeout=10) as client:
        for round_ in range(rounds):
            gpus = [_gpu(i) for i in range(2)]
            tokens = [_token(round_ * 10 + i) for i in range(10)]
            for path, body in (("gpu-metrics", gpus), ("token-usage", tokens)):
                response = await client.post(f"/api/v1/{path}", json=body)
                response.raise_for_status()
            legacy_gpu = {
                "ts": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                "host": "legacy-host",
                "gpu_index": 0,
                "name": "Tesla T4",
                "utilization": 0.5,
                "mem_used_mb": 3000,
                "mem_total_mb": 15360,
                "power_w": 40,
                "price_per_hour_usd": 0.35,
            }
            legacy_token = {
                "ts": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                "model": "legacy-model",
                "prompt_tokens": 50,
                "completion_tokens": 10,
                "latency_ms": 250,
            }
            await client.post("/api/v1/gpu-metrics", json=legacy_gpu)
            await client.post("/api/v1/token-usage", json=legacy_token)
            await client.post("/api/v1/gpu-metrics", json={"gpu_index": "zero"})  # 422
            await client.post("/api/v1/token-usage", content=b"{not json")  # 422
            await asyncio.sleep(1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for bad in (b"{not json", b"[1, 2]", orjson.dumps({"host": "h"})):
            await producer.send(topics["gpu"], bad)
            await producer.send(topics["token"], bad)
        await producer.flush()
    finally:
        await producer.stop()


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    if not _poll(check, timeout):
        raise TimeoutError(f"{what} not within {timeout:.0f}s")


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def verify(
    bootstrap: str,
    mongodb_uri: str,
    state: Path,
    *,
    kafka_metrics: str | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    extra_queries: list[Query] | None = None,
    render_to: Path | None = None,
    linger_s: float = 0,
) -> Report:
    """Run the pipeline and Prometheus against the given Kafka (its JMX exporter at
    `kafka_metrics`, host:port) and MongoDB, and check; with `render_to`, draw the dashboards
    from that Prometheus after `linger_s` more seconds."""
    if prometheus_binary() is None:
        raise FileNotFoundError("prometheus not found in .tools/bin: run `make setup`")
    state.mkdir(parents=True, exist_ok=True)
    suffix = os.urandom(3).hex()
    topics = {"gpu": f"verify.gpu.{suffix}", "token": f"verify.token.{suffix}"}
    ensure_topics(
        bootstrap,
        {
            topics["gpu"]: 3,
            topics["token"]: 3,
            f"{topics['gpu']}.dlq": 1,
            f"{topics['token']}.dlq": 1,
        },
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": f"verify_{suffix}",
        "TOPIC_GPU_METRICS": topics["gpu"],
        "TOPIC_TOKEN_USAGE": topics["token"],
        "CONSUMER_GROUP": f"verify-{suffix}",
        "PRODUCER_SOURCE": "synthetic",
        "PRODUCER_RATE": "40",
        "PRODUCER_GPUS": "4",
        "LOG_LEVEL": "INFO",
    }
    pipeline = LocalPipeline(
        state, env, free_port(), free_port(), prometheus_port=free_port(), scrape=SCRAPE,
        kafka_metrics=kafka_metrics,
    )  # fmt: skip
    without = (
        {}
        if kafka_metrics
        else {"kafka_": NO_BROKER_METRICS, 'up{job="kafka-metrics"': NO_BROKER_METRICS}
    )
    report = Report()
    try:
        pipeline.start()
        processor_url = pipeline.processor_url
        prom_url = str(pipeline.prometheus_url)
        progress("waiting for the processor and Prometheus")
        _wait(lambda: _ready(f"{processor_url}/readyz"), 90, "processor ready")
        _wait(lambda: _ready(f"{prom_url}/-/ready"), 60, "Prometheus ready")
        progress("driving traffic (v1 and legacy events, 4xx requests, dead letters)")
        asyncio.run(drive_traffic(processor_url, bootstrap, topics))
        prom = PrometheusApi(prom_url)

        def settled() -> bool:
            # the last links of the chains: Sloth's budget of every SLO, cost, dead letters
            waiting.clear()
            for expr, want in SETTLED.items():
                if prom.query(expr)[1] < want:
                    waiting.append(expr)
            return not waiting

        waiting: list[str] = []
        progress("waiting for scrapes and rule evaluations")
        if not _poll(settled, 120):  # check anyway: the failures say what is missing
            report.notes.append(f"still without data after 120 s: {', '.join(waiting)}")
        rules = rule_queries()
        promql, logql = dashboard_queries(boards())
        progress(f"evaluating {len(rules)} rules and {len(promql) + len(logql)} dashboard queries")
        groups = sum(len(doc["spec"]["groups"]) for doc in prometheus_rules().values())
        check_rule_health(prom, groups, report)
        check_promql(prom, [*rules, *promql, *(extra_queries or [])], report, without)
        fields = {name: log_fields(state / f"{name}.log") for name in ("processor", "producer")}
        check_logql(logql, alloy_labels(), fields, report)
        report.notes = sorted(set(report.notes))
        if render_to is not None:
            if linger_s:
                progress(f"letting the pipeline run {linger_s:.0f}s more for the pictures")
                until = time.monotonic() + linger_s
                while time.monotonic() < until:
                    asyncio.run(drive_traffic(processor_url, bootstrap, topics, rounds=2))
            from gpu_analytics_tools.observability.dashboards.render import render  # matplotlib

            for path in render(prom_url, render_to, minutes=max(2, (linger_s + 60) / 60)):
                progress(f"wrote {path}")
        return report
    finally:
        pipeline.stop(timeout=20)
