"""End-to-end tests against a real API server (see e2e/README.md)."""
