"""Observability as code: scrape labels from the ServiceMonitors, the local Prometheus, the
Grafana dashboards (Foundation SDK) and the end-to-end check that every query has data."""
