"""Shared pieces of our dashboards: datasource variables, links, panel shorthands.

Every dashboard selects its datasources through variables (`$datasource`, `$loki`), carries
the `gpu-analytics` tag (the links between the dashboards list that tag), and has a stable uid.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

Board = Callable[[], db.Dashboard]

TAG = "gpu-analytics"
PROM = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
LOKI = common.DataSourceRef(type_val="loki", uid="${loki}")
NAMESPACE = 'namespace="$namespace"'


def dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .timezone("browser")
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .editable()
        .link(
            db.DashboardLink("GPU analytics")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(False)
            .include_vars(False)
            .keep_time(True)
        )
        .with_variable(db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )


def namespace_variable() -> db.QueryVariable:
    return (
        db.QueryVariable("namespace")
        .label("Namespace")
        .datasource(PROM)
        .query("label_values(gpu_analytics_events_consumed_total, namespace)")
        .definition("label_values(gpu_analytics_events_consumed_total, namespace)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .current(model.VariableOption(text="pipeline", value="pipeline"))
    )


def label_variable(name: str, title: str, metric: str, label: str = "") -> db.QueryVariable:
    """Variable `name`: the values of `label` (default: `name`) on `metric`, multi-value, All
    by default."""
    query = f"label_values({metric}, {label or name})"
    return (
        db.QueryVariable(name)
        .label(title)
        .datasource(PROM)
        .query(query)
        .definition(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(text="All", value="$__all"))
    )


def prom(expr: str, legend: str = "__auto", *, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROM)


def logql(expr: str, legend: str = "", *, ref: str = "A") -> loki.Dataquery:
    return loki.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(LOKI)


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    *queries: prometheus.Dataquery | loki.Dataquery,
    width: int = 12,
    height: int = 8,
    minimum: float | None = 0,
    limits: db.ThresholdsConfig | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if minimum is not None:
        panel = panel.min(minimum)
    if limits is not None:
        panel = panel.thresholds(limits).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def single(
    title: str,
    description: str,
    unit: str,
    query: prometheus.Dataquery,
    *,
    width: int = 4,
    limits: db.ThresholdsConfig | None = None,
    decimals: float | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .with_target(query)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if limits is not None:
        panel = panel.thresholds(limits)
    return panel


def to_json(board: db.Dashboard) -> str:
    """The dashboard as Grafana's JSON model, stable across runs (sorted keys)."""
    data = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
