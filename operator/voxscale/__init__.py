"""voxscale: a Kubernetes operator that autoscales GPU speech-recognition (Triton) clusters."""

__version__ = "0.1.0"
