"""Word error rate of the reference ASR model on speech synthesized by flite from known sentences."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
# flite's 16 kHz voices (its `kal` voice is 8 kHz and is left out rather than resampled).
VOICES = ("rms", "kal16", "slt", "awb")
# Harvard sentences, lists 1 and 2 (IEEE Recommended Practice for Speech Quality Measurements, 1969).
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
)


@dataclass(frozen=True)
class Utterance:
    voice: str
    text: str
    audio: np.ndarray[Any, np.dtype[np.float32]]

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped except in-word apostrophes ("it's", "man's")."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions turning `ref` into `hyp` (Levenshtein on words)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER: total word errors over total reference words, e.g. 3 errors / 60 words = 5 %."""
    errors = sum(edit_distance(words(ref), words(hyp)) for ref, hyp in pairs)
    total = sum(len(words(ref)) for ref, _ in pairs)
    return errors / total if total else float("nan")


def read_wav(path: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def synthesize(workdir: Path, voices: tuple[str, ...] = VOICES) -> list[Utterance]:
    """Every sentence in every voice, via Debian's `flite` (apt-get install flite)."""
    flite = shutil.which("flite")
    if flite is None:
        raise RuntimeError("flite is not installed: apt-get install -y flite")
    out = []
    for voice in voices:
        for i, text in enumerate(SENTENCES):
            path = workdir / f"{voice}-{i:02d}.wav"
            subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(path)], check=True)
            out.append(Utterance(voice, text, read_wav(path)))
    return out


@dataclass(frozen=True)
class Transcript:
    utterance: Utterance
    text: str
    seconds: float
    """Wall time of the request, end to end through Triton."""


def transcribe_all(url: str, model: str, utterances: list[Utterance]) -> list[Transcript]:
    """Send the utterances one at a time over gRPC, so each time is one model execution."""
    import time

    from tritonclient.grpc import InferenceServerClient, InferInput

    client = InferenceServerClient(url)
    out = []
    try:
        for u in utterances:
            inp = InferInput("AUDIO", [1, len(u.audio)], "FP32")
            inp.set_data_from_numpy(u.audio[np.newaxis, :])
            started = time.monotonic()
            result = client.infer(model, [inp], client_timeout=120.0)
            elapsed = time.monotonic() - started
            text = result.as_numpy("TEXT")
            out.append(Transcript(u, text.reshape(-1)[0].decode() if text is not None else "", elapsed))
    finally:
        client.close()
    return out


def report(transcripts: list[Transcript]) -> dict[str, Any]:
    """WER overall and per voice, and the real-time factor (processing seconds per audio second)."""
    voices = sorted({t.utterance.voice for t in transcripts})
    audio = sum(t.utterance.seconds for t in transcripts)
    return {
        "utterances": len(transcripts),
        "audio_seconds": round(audio, 2),
        "wer": wer([(t.utterance.text, t.text) for t in transcripts]),
        "wer_by_voice": {
            v: wer([(t.utterance.text, t.text) for t in transcripts if t.utterance.voice == v])
            for v in voices
        },
        "rtf": sum(t.seconds for t in transcripts) / audio if audio else float("nan"),
    }
