"""GPU-time stand-in for an ASR model: a Triton Python-backend model that sleeps like a GPU batch.

This is NOT speech recognition. It exists so that the autoscaler can be exercised against a
real Triton server on a machine without a GPU: one model execution of a batch of b requests
takes `fixed_seconds + per_item_seconds * b` of wall time (time.sleep, no CPU burnt), the
shape of a GPU forward pass whose cost is mostly fixed (weights read, kernel launches) with a
small marginal cost per extra item. The numbers come from `profile.json` next to this file
(see workers/README.md for why the defaults are what they are); the real reference model is
`asr-reference`.

Input `AUDIO`: 16 kHz mono PCM, FP32 in [-1, 1], variable length (`dims: [-1]`).
Output `TEXT`: one UTF-8 string per request that says it came from the stand-in.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

SAMPLE_RATE = 16_000
DEFAULT_PROFILE = {"fixed_seconds": 0.05, "per_item_seconds": 0.006, "load_seconds": 2.0}


def load_profile(model_dir: str, version: str) -> dict[str, float]:
    """The defaults overlaid with `<model_dir>/<version>/profile.json`, if that file exists."""
    profile = dict(DEFAULT_PROFILE)
    path = os.path.join(model_dir, version, "profile.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        profile.update({k: float(raw[k]) for k in DEFAULT_PROFILE if k in raw})
    return profile


def batch_seconds(profile: dict[str, float], batch_size: int) -> float:
    """Wall time of one execution: e.g. 0.05 + 0.006 * 16 = 0.146 s for a batch of 16."""
    return profile["fixed_seconds"] + profile["per_item_seconds"] * batch_size


def transcript(samples: int, batch_size: int) -> str:
    return (
        f"[asr-standin: GPU-time stand-in, not a transcription] "
        f"{samples / SAMPLE_RATE:.2f} s of audio in a batch of {batch_size}"
    )


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config: Any) -> Any:
        # The operator renders only batching/instances into config.pbtxt; the I/O is ours.
        auto_complete_model_config.add_input({"name": "AUDIO", "data_type": "TYPE_FP32", "dims": [-1]})
        auto_complete_model_config.add_output({"name": "TEXT", "data_type": "TYPE_STRING", "dims": [1]})
        return auto_complete_model_config

    def initialize(self, args: dict[str, str]) -> None:
        self.profile = load_profile(args["model_repository"], args["model_version"])
        # Emulates reading weights onto a GPU: the worker is not Ready before this returns.
        time.sleep(self.profile["load_seconds"])

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np
        import triton_python_backend_utils as pb_utils

        audio = [pb_utils.get_input_tensor_by_name(r, "AUDIO").as_numpy() for r in requests]
        batch = sum(int(a.shape[0]) for a in audio)
        time.sleep(batch_seconds(self.profile, batch))
        responses = []
        for a in audio:
            texts = [[transcript(int(row.shape[-1]), batch).encode()] for row in a]
            out = pb_utils.Tensor("TEXT", np.array(texts, dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
