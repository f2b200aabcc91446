"""Metrics sources: `protocol.MetricsSource`, its Prometheus implementation, and safe PromQL."""
