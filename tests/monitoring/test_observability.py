"""`make verify-observability` inside `make test`: every rule and dashboard query on a real
Prometheus (the cluster's release) scraping the running pipeline, with planted faults that
must fail it: a query on a missing metric, one on a missing label, a Loki panel on a label
Alloy does not set and on a JSON field no log line has."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_analytics_tools.observability.queries import (
    Query,
    boards,
    dashboard_queries,
    rule_queries,
    substitute,
)
from gpu_analytics_tools.observability.verify import (
    Report,
    alloy_labels,
    check_logql,
    our_selectors,
    verify,
)
from gpu_analytics_tools.stack.stack import StackEnv

PLANTED = [
    Query("planted / missing metric", "sum(rate(gpu_analytics_no_such_metric_total[1m]))", "panel"),
    Query(
        "planted / missing label",
        'sum(gpu_analytics_events_stored_total{namespace="pipeline", no_such_label="x"})',
        "panel",
    ),
    Query(
        "planted / alert on a missing label",
        'gpu_analytics_dependency_up{dep="kafka"} == 0',
        "alert",
    ),
    Query("planted / syntax error", "sum(rate(gpu_analytics_events_stored_total[1m])", "panel"),
]


@pytest.fixture(scope="module")
def report(stack: StackEnv, tmp_path_factory: pytest.TempPathFactory) -> Report:
    state = Path(tmp_path_factory.mktemp("verify-observability"))
    return verify(
        stack.bootstrap_servers,
        stack.mongodb_uri,
        state,
        kafka_metrics=stack.local.kafka.metrics_address if stack.local else None,
        extra_queries=PLANTED,
        render_to=state / "png",
    )


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_every_rule_and_dashboard_query_evaluates_with_data(report: Report) -> None:
    real = [f for f in report.failures if not f.startswith("planted /")]
    assert real == [], report.summary()
    rules = rule_queries()
    promql, logql = dashboard_queries(boards())
    sources = set(report.checked)
    assert {q.source for q in [*rules, *promql, *logql]} <= sources
    # every recording rule and every dashboard query on our metrics returned data
    with_data = set(report.with_data)
    for query in [*rules, *promql]:
        if query.kind != "alert" and ("gpu_analytics_" in query.expr or "slo:" in query.expr):
            assert query.source in with_data, query.source
    print(report.summary())  # noqa: T201 - the counts, for the log of `make test`


@pytest.mark.integration
@pytest.mark.usefixtures("report")
def test_dashboards_are_drawn_without_grafana(tmp_path_factory: pytest.TempPathFactory) -> None:
    pngs = sorted(Path(tmp_path_factory.getbasetemp()).glob("verify-observability*/png/*.png"))
    # every dashboard but logs (Loki panels are not drawn)
    assert {p.stem for p in pngs} == {"pipeline", "gpu-fleet", "tokens-cost", "gpu-cost-waste"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_planted_queries_on_missing_series_fail(report: Report) -> None:
    failed = " ".join(report.failures)
    for query in PLANTED:
        assert query.source in failed, f"{query.source} was not caught"


def test_template_variables_are_substituted() -> None:
    expr = 'rate(x{namespace="$namespace", model=~"${model}"}[$__rate_interval])'
    assert substitute(expr) == 'rate(x{namespace="pipeline", model=~".*"}[1m])'
    with pytest.raises(KeyError):
        substitute('x{a="$unknown"}')


def test_logql_uses_only_alloys_labels_and_real_fields() -> None:
    labels = alloy_labels()
    assert {"namespace", "pod", "container", "app"} <= labels
    fields = {"processor": {"time", "level", "logger", "message", "service"}, "producer": set()}
    fields["producer"] = set(fields["processor"])
    _, logql = dashboard_queries(boards())
    clean = Report()
    check_logql(logql, labels, fields, clean)
    assert clean.failures == []
    planted = Report()
    check_logql(
        [
            Query("bad label", '{namespace="pipeline", service_name="processor"} | json', "panel"),
            Query("bad field", '{app="producer"} | json | severity="ERROR"', "panel"),
        ],
        labels,
        fields,
        planted,
    )
    assert len(planted.failures) == 2, planted.failures


def test_our_selectors_come_from_the_syntax_tree() -> None:
    expr = (
        'sum by (topic) (rate(gpu_analytics_events_stored_total{namespace="pipeline",'
        ' path=~"a{2}|}"}[5m] offset 1m)) / on() group_left max(up{job="processor"})'
        " + ignoring(x) slo:sli_error:ratio_rate5m + sum(up) + kube_pod_info"
    )
    assert our_selectors(expr) == {
        (
            "gpu_analytics_events_stored_total",
            'gpu_analytics_events_stored_total{namespace="pipeline",path=~"a{2}|}"}',
        ),
        ("up", 'up{job="processor"}'),
        ("slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate5m"),
    }


def test_every_rule_and_dashboard_query_parses() -> None:
    promql, _ = dashboard_queries(boards())
    found = set()
    for query in [*rule_queries(), *promql]:
        expr = substitute(query.expr)
        if expr.startswith("label_values("):
            continue  # Grafana's, not PromQL: its metric is checked on its own
        found |= {metric for metric, _ in our_selectors(expr)}
    assert "gpu_analytics_events_stored_total" in found and len(found) > 20
