"""Tokens and cost: LLM throughput, errors, latency, time to first token, GPU time and cost per
model, from the processor's counters (each stored token.usage.v1 event counted once). GPU time
and cost come from the `gpu-analytics.cost` recording rules (monitoring/rules): each GPU's
time split among the models on it by their share of its tokens, as /api/v1/tokens/summary."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from gpu_analytics_tools.observability.dashboards.common import (
    dashboard,
    graph,
    label_variable,
    prom,
    single,
    thresholds,
)

MODEL = 'model=~"$model"'
RATE = "[$__rate_interval]"
ERRORS = 'status="error"'


def _rate(metric: str, by: str = "model", extra: str = "") -> str:
    selector = f"{MODEL}, {extra}" if extra else MODEL
    return f"sum by ({by}) (rate({metric}{{{selector}}}{RATE}))"


def _cost(rule: str, by: str = "model") -> str:
    """A `gpu-analytics.cost` recording rule for the selected models."""
    return f"sum by ({by}) ({rule}{{{MODEL}}})"


def _quantile(q: float, metric: str) -> str:
    return f"histogram_quantile({q}, {_rate(metric + '_bucket', 'le, model')})"


def board() -> db.Dashboard:
    return (
        dashboard(
            "gpu-analytics-tokens-cost",
            "GPU analytics / Tokens and cost",
            "LLM usage per model: tokens, requests, latency, time to first token, and GPU time "
            "and cost: each GPU's wall-clock time split among its models by their share of its "
            "tokens (the rule of /api/v1/tokens/summary).",
        )
        .with_variable(label_variable("model", "Model", "gpu_analytics_llm_requests_total"))
        .with_panel(
            single(
                "Tokens/s",
                "Input and output tokens per second, all selected models.",
                "short",
                prom(f"sum({_rate('gpu_analytics_llm_tokens_total')})"),
                width=6,
            )
        )
        .with_panel(
            single(
                "Requests/s",
                "LLM calls stored per second.",
                "reqps",
                prom(f"sum({_rate('gpu_analytics_llm_requests_total')})"),
                width=6,
            )
        )
        .with_panel(
            single(
                "Error ratio",
                "Share of LLM calls with status error.",
                "percentunit",
                prom(
                    f"sum({_rate('gpu_analytics_llm_requests_total', extra=ERRORS)})"
                    f" / sum({_rate('gpu_analytics_llm_requests_total')})"
                ),
                width=6,
                limits=thresholds((None, "green"), (0.01, "orange"), (0.05, "red")),
            )
        )
        .with_panel(
            single(
                "Cost per hour",
                "What the selected models cost per hour: their share of each GPU's time, priced "
                "at its hourly rate (5-minute rate).",
                "currencyUSD",
                prom(f"3600 * sum({_cost('gpu_analytics:llm_cost_usd:rate5m')})"),
                width=6,
                decimals=2,
            )
        )
        .with_panel(
            graph(
                "Tokens/s by model",
                "Input (prompt) and output (completion) tokens per second.",
                "short",
                prom(
                    _rate("gpu_analytics_llm_tokens_total", "model, token_type"),
                    "{{model}} {{token_type}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Requests by status",
                "LLM calls per second by model and status.",
                "reqps",
                prom(
                    _rate("gpu_analytics_llm_requests_total", "model, status"),
                    "{{model}} {{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Request duration p95",
                "95th percentile of the call's duration per model.",
                "s",
                prom(_quantile(0.95, "gpu_analytics_llm_request_duration_seconds"), "{{model}}"),
            )
        )
        .with_panel(
            graph(
                "Time to first token p95",
                "95th percentile of the time to the first output token per model.",
                "s",
                prom(
                    _quantile(0.95, "gpu_analytics_llm_time_to_first_token_seconds"),
                    "{{model}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Cost per 1k tokens",
                "USD per 1000 tokens per model: its GPU cost over its tokens on priced GPUs, "
                "as /api/v1/tokens/summary computes it.",
                "currencyUSD",
                prom(
                    f"1000 * {_cost('gpu_analytics:llm_cost_usd:rate5m')}"
                    f" / {_cost('gpu_analytics:llm_priced_tokens:rate5m')}",
                    "{{model}}",
                ),
            )
        )
        .with_panel(
            graph(
                "GPU time by model",
                "GPUs each model occupies (GPU-seconds per second, its token share of each GPU), "
                "and the whole fleet: the models never add up to more than the fleet.",
                "short",
                prom(_cost("gpu_analytics:llm_gpu_seconds:rate5m"), "{{model}}"),
                prom("sum(gpu_analytics:gpu_seconds:rate5m)", "all GPUs", ref="B"),
            )
        )
        .with_panel(
            graph(
                "GPU cost per hour",
                "The fleet's cost per hour (every GPU at its price, busy or not) and the part "
                "attributed to models; the difference is idle or serves calls naming no GPU.",
                "currencyUSD",
                prom("3600 * sum(gpu_analytics:gpu_cost_usd:rate5m)", "all GPUs"),
                prom(
                    "3600 * sum(gpu_analytics:llm_cost_usd:rate5m)", "attributed to models", ref="B"
                ),
            )
        )
    )
