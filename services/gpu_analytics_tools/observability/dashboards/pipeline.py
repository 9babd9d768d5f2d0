"""Pipeline overview: what goes in, what is stored, how late, how far behind, what is refused,
how many replicas run and how busy they are against the HPA's target, the SLOs, and the health
of the platform under it (brokers, database, lag, restarts, volumes)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from gpu_analytics_tools.observability.dashboards.common import (
    NAMESPACE,
    dashboard,
    graph,
    namespace_variable,
    prom,
    single,
    thresholds,
)

INGEST = 'handler=~"/api/v1/(gpu-metrics|token-usage)"'
KAFKA = 'job="kafka-metrics", namespace="kafka"'
MONGODB = 'job="mongodb-exporter", namespace="mongodb"'
LATENCY = "gpu_analytics_end_to_end_latency_seconds_bucket"


def _quantile(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (le) (rate({LATENCY}{{{NAMESPACE}}}[$__rate_interval])))"
    )


def board() -> db.Dashboard:
    budget = thresholds((None, "red"), (0, "orange"), (0.25, "green"))
    return (
        dashboard(
            "gpu-analytics-pipeline",
            "GPU analytics / Pipeline",
            "Ingest, storage, lag, dead letters, replicas and the processor's SLOs.",
        )
        .with_variable(namespace_variable())
        .with_row(db.Row("Service level (30 days)"))
        .with_panel(
            single(
                "Ingest availability: budget left",
                "Share of the 30-day error budget of the 99.5 % ingest availability SLO not "
                "yet spent (Sloth's slo:period_error_budget_remaining:ratio).",
                "percentunit",
                prom(
                    'slo:period_error_budget_remaining:ratio{sloth_service="processor", '
                    'sloth_slo="ingest-availability"}',
                    "{{sloth_slo}}",
                ),
                limits=budget,
                width=6,
            )
        )
        .with_panel(
            single(
                "Freshness: budget left",
                "Budget left of the 99 % freshness SLO (events stored within 10 s).",
                "percentunit",
                prom(
                    'slo:period_error_budget_remaining:ratio{sloth_service="processor", '
                    'sloth_slo="freshness"}',
                    "{{sloth_slo}}",
                ),
                limits=budget,
                width=6,
            )
        )
        .with_panel(
            single(
                "Ingest latency: budget left",
                "Budget left of the 99 % ingest latency SLO (requests under 250 ms).",
                "percentunit",
                prom(
                    'slo:period_error_budget_remaining:ratio{sloth_service="processor", '
                    'sloth_slo="ingest-latency"}',
                    "{{sloth_slo}}",
                ),
                limits=budget,
                width=6,
            )
        )
        .with_panel(
            single(
                "Stored events/s",
                "Events newly written to MongoDB per second, both topics.",
                "ops",
                prom(
                    f"sum(rate(gpu_analytics_events_stored_total{{{NAMESPACE}}}[$__rate_interval]))"
                ),
                width=6,
            )
        )
        .with_row(db.Row("Flow"))
        .with_panel(
            graph(
                "Events in and stored",
                "Sent by producers (acknowledged by Kafka), accepted by HTTP ingest, and newly "
                "stored, per topic. Stored below in+sent for long means a backlog.",
                "ops",
                prom(
                    "sum by (topic) (rate(gpu_analytics_events_sent_total"
                    f"{{{NAMESPACE}}}[$__rate_interval]))",
                    "sent {{topic}}",
                ),
                prom(
                    "sum by (topic) (rate(gpu_analytics_ingest_events_total"
                    f"{{{NAMESPACE}}}[$__rate_interval]))",
                    "ingested {{topic}}",
                    ref="B",
                ),
                prom(
                    "sum by (topic) (rate(gpu_analytics_events_stored_total"
                    f"{{{NAMESPACE}}}[$__rate_interval]))",
                    "stored {{topic}}",
                    ref="C",
                ),
            )
        )
        .with_panel(
            graph(
                "End-to-end latency",
                "Store time minus the event's timestamp: p50, p95, p99. The freshness SLO "
                "wants 99 % under 10 s.",
                "s",
                prom(_quantile(0.5), "p50"),
                prom(_quantile(0.95), "p95", ref="B"),
                prom(_quantile(0.99), "p99", ref="C"),
                limits=thresholds((None, "green"), (10, "red")),
            )
        )
        .with_panel(
            graph(
                "Consumer lag per partition",
                "Records between each partition's end and the group's committed offset "
                "(max over replicas: a partition's series moves on a rebalance).",
                "short",
                prom(
                    f"max by (topic, partition) (gpu_analytics_consumer_lag{{{NAMESPACE}}})",
                    "{{topic}}/{{partition}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Dead letters by reason",
                "Records sent to <topic>.dlq per second, by topic and reason.",
                "ops",
                prom(
                    "sum by (topic, reason) (rate(gpu_analytics_events_invalid_total"
                    f"{{{NAMESPACE}}}[$__rate_interval]))",
                    "{{topic}} {{reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "HTTP ingest by status",
                "Ingest requests per second by handler and status class; 5xx spend the "
                "availability budget.",
                "reqps",
                prom(
                    f"sum by (handler, status) (rate(http_requests_total{{{NAMESPACE}, "
                    f"{INGEST}}}[$__rate_interval]))",
                    "{{handler}} {{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "HTTP ingest latency",
                "p99 of ingest request duration per handler; the latency SLO wants 99 % "
                "under 250 ms.",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (le, handler) (rate("
                    f"http_request_duration_seconds_bucket{{{NAMESPACE}, {INGEST}}}"
                    "[$__rate_interval])))",
                    "p99 {{handler}}",
                ),
                limits=thresholds((None, "green"), (0.25, "red")),
            )
        )
        .with_row(db.Row("Scaling"))
        .with_panel(
            graph(
                "Replicas",
                "Available replicas of the processor and producer Deployments and what "
                "their HPAs want (kube-state-metrics).",
                "short",
                prom(
                    "kube_deployment_status_replicas_available"
                    f'{{{NAMESPACE}, deployment=~"processor|producer"}}',
                    "{{deployment}} available",
                ),
                prom(
                    "kube_horizontalpodautoscaler_status_desired_replicas"
                    f'{{{NAMESPACE}, horizontalpodautoscaler=~"processor|producer"}}',
                    "{{horizontalpodautoscaler}} desired",
                    ref="B",
                ),
            )
        )
        .with_panel(
            graph(
                "Processor CPU against the HPA target",
                "CPU used by each processor pod as a share of its request, and the HPA's "
                "target utilisation: above the line for a while, the HPA adds pods.",
                "percentunit",
                prom(
                    "sum by (pod) (rate(container_cpu_usage_seconds_total"
                    f'{{{NAMESPACE}, container="processor"}}[$__rate_interval]))'
                    " / sum by (pod) (kube_pod_container_resource_requests"
                    f'{{{NAMESPACE}, container="processor", resource="cpu"}})',
                    "{{pod}}",
                ),
                prom(
                    "kube_horizontalpodautoscaler_spec_target_metric"
                    f'{{{NAMESPACE}, horizontalpodautoscaler="processor", '
                    'metric_name="cpu"} / 100',
                    "HPA target",
                    ref="B",
                ),
            )
        )
        .with_panel(
            graph(
                "Producer buffer and errors",
                "Events waiting for Kafka's acknowledgement, and failed sends per second "
                "(kept and retried).",
                "short",
                prom(
                    f"sum by (pod) (gpu_analytics_producer_buffered_events{{{NAMESPACE}}})",
                    "buffered {{pod}}",
                ),
                prom(
                    "sum by (pod) (rate(gpu_analytics_send_errors_total"
                    f"{{{NAMESPACE}}}[$__rate_interval]))",
                    "send errors/s {{pod}}",
                    ref="B",
                ),
            )
        )
        .with_row(db.Row("System health"))
        .with_panel(
            single(
                "Kafka brokers up",
                "Brokers whose JMX exporter answers Prometheus (job kafka-metrics).",
                "short",
                prom(f"sum(up{{{KAFKA}}})"),
                limits=thresholds((None, "red"), (1, "green")),
                width=6,
            )
        )
        .with_panel(
            single(
                "MongoDB up",
                "1 when the MongoDB exporter reaches mongod (mongodb_up).",
                "short",
                prom(f"max(mongodb_up{{{MONGODB}}})"),
                limits=thresholds((None, "red"), (1, "green")),
                width=6,
            )
        )
        .with_panel(
            single(
                "Consumer lag",
                "Records the processor has yet to consume, all topics.",
                "short",
                prom(f"sum(gpu_analytics:consumer_lag:sum{{{NAMESPACE}}})"),
                width=6,
            )
        )
        .with_panel(
            single(
                "Pod restarts (1 h)",
                "Container restarts in the last hour in kafka, mongodb and the pipeline's "
                "namespace (kube-state-metrics).",
                "short",
                prom(
                    "sum(increase(kube_pod_container_status_restarts_total"
                    '{namespace=~"kafka|mongodb|$namespace"}[1h]))'
                ),
                limits=thresholds((None, "green"), (1, "orange")),
                width=6,
            )
        )
        .with_panel(
            graph(
                "Kafka partitions at risk",
                "Partitions with fewer in-sync replicas than replicas, and partitions without "
                "a leader (reported by the active controller).",
                "short",
                prom(
                    f"sum(kafka_server_replicamanager_underreplicatedpartitions{{{KAFKA}}})",
                    "under-replicated",
                ),
                prom(
                    f"sum(kafka_controller_kafkacontroller_offlinepartitionscount{{{KAFKA}}})",
                    "offline",
                    ref="B",
                ),
            )
        )
        .with_panel(
            graph(
                "Kafka request time p99",
                "Total time of produce and fetch requests at the broker, 99th percentile "
                "(the worst broker).",
                "ms",
                prom(
                    "max by (request) (kafka_network_requestmetrics_totaltimems"
                    f'{{{KAFKA}, quantile="0.99"}})',
                    "{{request}}",
                ),
            )
        )
        .with_panel(
            graph(
                "MongoDB operation latency",
                "Mean time of MongoDB's reads, writes and commands (serverStatus).",
                "ms",
                prom(
                    "sum by (op_type) (rate(mongodb_ss_opLatencies_latency"
                    f"{{{MONGODB}}}[$__rate_interval])) / sum by (op_type) "
                    f"(rate(mongodb_ss_opLatencies_ops{{{MONGODB}}}[$__rate_interval])) / 1000",
                    "{{op_type}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Data volumes used",
                "Share of each broker and database volume in use (kubelet); "
                "DataVolumeNearlyFull fires above 85 %.",
                "percentunit",
                prom(
                    "1 - kubelet_volume_stats_available_bytes"
                    '{namespace=~"kafka|mongodb"} / kubelet_volume_stats_capacity_bytes'
                    '{namespace=~"kafka|mongodb"}',
                    "{{namespace}}/{{persistentvolumeclaim}}",
                ),
                limits=thresholds((None, "green"), (0.85, "red")),
            )
        )
    )
