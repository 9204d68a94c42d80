"""Metrics, alert rules and dashboards."""
