"""Metrics sources: `protocol.MetricsSource`, its Prometheus implementation, safe PromQL, the
endpoint allow-list (`endpoints`) and body-free failure reasons (`failures`)."""
