"""The lab: replay and its baselines, the live demo, the local control plane, the Triton worker, traces."""
