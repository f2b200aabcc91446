"""Reference ASR model: silero-vad drops the silence, pocketsphinx (en-US) transcribes the speech.

A real, small, CPU-only speech recognizer served by Triton's Python backend, so the worker
path (model repository, rendered config, strict readiness, metrics) is exercised with actual
recognition. Both models ship inside their pip packages (silero-vad's TorchScript weights,
pocketsphinx's en-US acoustic model, language model and dictionary): nothing is downloaded.

Input `AUDIO`: 16 kHz mono PCM, FP32 in [-1, 1], variable length (`dims: [-1]`).
Output `TEXT`: the lower-case transcript ("" when the VAD finds no speech).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
SPLIT_SILENCE_MS = 800
PAD_MS = 200


def decoder_settings(model_dir: str, version: str) -> dict[str, Any]:
    """`<model_dir>/<version>/decoder.json`, if present: pocketsphinx Decoder options (e.g. a
    narrower beam, frame downsampling `ds`, no second pass `fwdflat`) that make a smaller, faster
    and less accurate model of the same weights (the fallback's stand-in, docs/fallback.md)."""
    import json
    import os

    path = os.path.join(model_dir, version, "decoder.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f))


class Recognizer:
    """VAD then decode each speech segment; usable with or without Triton."""

    def __init__(self, decoder: dict[str, Any] | None = None) -> None:
        import torch
        from pocketsphinx import Decoder
        from silero_vad import load_silero_vad

        # One thread: Triton runs one model instance per core it is given, not one per thread.
        torch.set_num_threads(1)
        self._torch = torch
        self._vad = load_silero_vad()
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **(decoder or {}))

    def speech(self, audio: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
        """The speech segments of `audio`, split only at pauses of at least SPLIT_SILENCE_MS.

        Decoding a whole phrase keeps the language model's context; cutting at every short
        pause (silero's 100 ms default) with its 30 ms padding clips unvoiced onsets ("k",
        "h") and raised WER on our flite set from 22 % to 27 %.
        """
        from silero_vad import get_speech_timestamps

        stamps = get_speech_timestamps(
            self._torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            self._vad,
            sampling_rate=SAMPLE_RATE,
            min_silence_duration_ms=SPLIT_SILENCE_MS,
            speech_pad_ms=PAD_MS,
        )
        return [audio[s["start"] : s["end"]] for s in stamps]

    def transcribe(self, audio: np.ndarray[Any, Any]) -> str:
        words = []
        for segment in self.speech(audio):
            pcm = (np.clip(segment, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            if hyp is not None and hyp.hypstr:
                words.append(hyp.hypstr)
        return " ".join(words)


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config: Any) -> Any:
        auto_complete_model_config.add_input({"name": "AUDIO", "data_type": "TYPE_FP32", "dims": [-1]})
        auto_complete_model_config.add_output({"name": "TEXT", "data_type": "TYPE_STRING", "dims": [1]})
        return auto_complete_model_config

    def initialize(self, args: dict[str, str]) -> None:
        self.recognizer = Recognizer(decoder_settings(args["model_repository"], args["model_version"]))

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            audio = pb_utils.get_input_tensor_by_name(request, "AUDIO").as_numpy()
            texts = [[self.recognizer.transcribe(row).encode()] for row in audio]
            out = pb_utils.Tensor("TEXT", np.array(texts, dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
