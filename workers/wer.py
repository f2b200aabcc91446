"""WER and real-time factor of the reference ASR model, served by a real Triton worker.

Synthesizes the Harvard sentences (lists 1-2) in flite's four 16 kHz voices, starts
`asr-reference` on the wheel's tritonserver with the operator's rendered config, transcribes
every utterance over gRPC and prints WER per voice, overall WER and the real-time factor.

    apt-get install -y flite
    .venv/bin/python workers/wer.py [--sentences 20] [--json out.json]
    .venv/bin/python workers/wer.py --decoder ds=2 --decoder fwdflat=false   # a smaller setting
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from voxscale_lab.worker.serve import Worker, worker_spec
from voxscale_lab.worker.triton import free_ports
from voxscale_lab.worker.wer import SENTENCES, VOICES, report, synthesize, transcribe_all

MODEL_DIR = Path(__file__).resolve().parent / "models" / "asr-reference"


def parse_option(text: str) -> tuple[str, Any]:
    """'ds=2' -> ('ds', 2); 'beam=1e-20' -> float; 'fwdflat=false' -> False."""
    key, _, raw = text.partition("=")
    if not key or not raw:
        raise SystemExit(f"--decoder {text!r}: expected KEY=VALUE")
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    return key, raw


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--json", type=Path, help="write the figures and every transcript here")
    parser.add_argument("--decoder", action="append", default=[], metavar="KEY=VALUE",
                        help="a pocketsphinx Decoder option (repeatable), written to decoder.json")
    args = parser.parse_args()
    decoder = dict(parse_option(o) for o in args.decoder)
    with tempfile.TemporaryDirectory(prefix="voxscale-wer-") as tmp:
        utterances = [u for u in synthesize(Path(tmp)) if u.text in SENTENCES[: args.sentences]]
    with Worker(MODEL_DIR, worker_spec(MODEL_DIR.name), free_ports()) as worker:
        if decoder:
            (worker.repository / MODEL_DIR.name / "1" / "decoder.json").write_text(json.dumps(decoder))
        ready = worker.start(ready_timeout=600)
        transcripts = transcribe_all(worker.grpc_url, MODEL_DIR.name, utterances)
    figures = report(transcripts)
    for t in transcripts:
        print(f"{t.utterance.voice:6s} {t.utterance.text!r:55s} -> {t.text!r}")
    print(
        f"start -> Ready {ready:.1f} s; {figures['utterances']} utterances, "
        f"{figures['audio_seconds']} s of audio"
    )
    for voice in VOICES:
        if voice in figures["wer_by_voice"]:
            print(f"  WER {voice:6s} {100 * figures['wer_by_voice'][voice]:5.1f} %")
    print(
        f"WER {100 * figures['wer']:.1f} %, real-time factor {figures['rtf']:.2f} "
        "(end to end through Triton, one request at a time)"
        + (f"; decoder {json.dumps(decoder, sort_keys=True)}" if decoder else "; decoder defaults")
    )
    if args.json:
        rows = [
            {"voice": t.utterance.voice, "ref": t.utterance.text, "hyp": t.text, "seconds": t.seconds}
            for t in transcripts
        ]
        args.json.write_text(json.dumps({**figures, "transcripts": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
