"""The Triton worker side: run the real tritonserver on a model repository, and load-test it."""
