"""`gpu-analytics dashboards render`: each dashboard's Prometheus panels drawn from a running
Prometheus into one PNG per dashboard (matplotlib), laid out as the dashboard's grid.

For a look at the dashboards without Grafana (`make dev` runs Prometheus on :9090): time
series as lines with the panel's legend format, stats as their last value, units as Grafana
names them (the common ones formatted, others shown raw). Loki panels are not drawn.
Grafana renders these dashboards for real; this is a picture, not a second Grafana.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib.axes import Axes  # noqa: E402

from gpu_analytics_tools.observability.prometheus import PrometheusApi  # noqa: E402
from gpu_analytics_tools.observability.queries import boards, substitute  # noqa: E402

GRID_COLUMNS = 24
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")

Series = tuple[str, list[float], list[float]]  # legend, Unix times, values


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt or fmt == "__auto":
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return inner or "value"
    return LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt)


def format_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "percentunit":
        return f"{value * 100:.1f} %"
    if unit == "currencyUSD":
        return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:.4f}"
    suffix = {"s": " s", "watt": " W", "celsius": " °C", "hertz": " Hz", "bytes": " B",
              "ops": " /s", "reqps": " req/s"}.get(unit, "")  # fmt: skip
    magnitude = abs(value)
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor and unit not in ("s", "celsius"):
            return f"{value / factor:.2f} {prefix}{suffix.strip()}".rstrip()
    return f"{value:.3g}{suffix}"


def panel_series(
    prom: PrometheusApi, panel: dict[str, Any], window: tuple[float, float, float]
) -> list[Series]:
    series: list[Series] = []
    for target in panel.get("targets", []):
        if (target.get("datasource") or {}).get("type") != "prometheus":
            continue
        for result in prom.range(substitute(target["expr"]), *window):
            times = [float(t) for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            series.append((legend(target.get("legendFormat", ""), result["metric"]), times, values))
    return series


def _draw(
    ax: Axes, panel: dict[str, Any], series: list[Series], window: tuple[float, float, float]
) -> None:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    ax.set_title(panel["title"], fontsize=9, loc="left")
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    if panel["type"] == "stat":
        last = [values[-1] for _, _, values in series if values]
        text = format_value(sum(last) if len(last) > 1 else last[0], unit)
        ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=18, transform=ax.transAxes)
        ax.set_axis_off()
        return
    for name, times, values in series[:12]:
        ax.plot(times, values, linewidth=1, marker="." if len(times) < 10 else "", label=name[:40])
    ax.set_xlim(window[0], window[1])
    for step in (
        panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])[1:]
    ):
        ax.axhline(step["value"], color="red", linestyle="--", linewidth=0.8)
    ax.xaxis.set_major_formatter(lambda v, _pos: datetime.fromtimestamp(v).strftime("%H:%M"))
    ax.yaxis.set_major_formatter(lambda v, _pos: format_value(v, unit))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(series) <= 8:
        ax.legend(fontsize=6, loc="upper left")


def render(prometheus_url: str, out: Path, minutes: float = 30) -> list[Path]:
    """One PNG per dashboard under `out`; returns their paths."""
    prom = PrometheusApi(prometheus_url)
    end = time.time()
    window = (end - minutes * 60, end, max(5.0, minutes * 60 / 240))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in boards().items():
        panels = [
            p
            for p in board["panels"]
            if p["type"] in ("timeseries", "stat")
            and any((t.get("datasource") or {}).get("type") == "prometheus" for t in p["targets"])
        ]
        if not panels:
            continue
        bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
        top = min(p["gridPos"]["y"] for p in panels)
        fig = plt.figure(figsize=(16, (bottom - top) * 0.42))
        grid = fig.add_gridspec(bottom - top, GRID_COLUMNS, hspace=2.5, wspace=1.5)
        for panel in panels:
            pos = panel["gridPos"]
            y = pos["y"] - top
            ax = fig.add_subplot(grid[y : y + pos["h"] - 1, pos["x"] : pos["x"] + pos["w"]])
            _draw(ax, panel, panel_series(prom, panel, window), window)
        fig.suptitle(f"{board['title']} (last {minutes:g} min)", x=0.01, ha="left")
        path = out / f"{name}.png"
        fig.savefig(path, dpi=80, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
