"""The demo's live sessions: the trace's rate split between one-shot requests and multi-chunk calls."""

from __future__ import annotations

import numpy as np
import pytest

from voxscale.series import History
from voxscale_lab.demo.bridge import Drain
from voxscale_lab.demo.report import Sample, StreamFigures, Summary, stream_figures
from voxscale_lab.demo.sessions import Session, SessionMix, chunk_times, live_at, sessions_at
from voxscale_lab.demo.traffic import SessionResult, Traffic, live_arrivals
from voxscale_lab.worker.streams import Answer, StreamRecord

MIX = SessionMix(share=0.2, chunks=(4, 12), pace_seconds=1.0)


def test_requests_and_the_sessions_chunks_add_up_to_the_trace_rate() -> None:
    rate = History.of(0.0, 5.0, [10.0, 40.0, 70.0])
    requests = MIX.request_series(rate).values
    chunks = MIX.session_series(rate).values * MIX.mean_chunks
    assert requests + chunks == pytest.approx(rate.values)
    assert chunks == pytest.approx(0.2 * rate.values)


def test_live_sessions_follow_the_trace_shape_at_share_times_rate_times_call_length() -> None:
    # 10 req/s for 300 s, then 100 req/s: sessions start at 0.2 x rate / 8 chunks a second and
    # last 7 s (first to last chunk of 4-12), so 0.25 x 7 = 1.75 then 2.5 x 7 = 17.5 are live.
    rate = History.of(0.0, 300.0, [10.0, 100.0])
    rng = np.random.default_rng(3)
    sessions = sessions_at(live_arrivals(MIX.session_series(rate), 0.0, 600.0, rng), MIX, rng, 400)
    low = np.mean([live_at(sessions, t, MIX.pace_seconds) for t in range(30, 300, 3)])
    high = np.mean([live_at(sessions, t, MIX.pace_seconds) for t in range(330, 600, 3)])
    assert low == pytest.approx(1.75, rel=0.35)
    assert high == pytest.approx(17.5, rel=0.15)


def test_a_session_sends_its_chunks_a_pace_apart_within_the_chunk_range() -> None:
    rng = np.random.default_rng(0)
    sessions = sessions_at(np.array([0.0, 2.5, 9.0]), MIX, rng, callers=5)
    assert all(4 <= s.chunks <= 12 and 0 <= s.caller < 5 for s in sessions)
    assert Session(2.5, 3, 0).chunk_times(1.0).tolist() == [2.5, 3.5, 4.5]
    times = chunk_times(sessions, 1.0)
    assert len(times) == sum(s.chunks for s in sessions) and np.all(np.diff(times) >= 0)
    assert MIX.longest_seconds == 11.0


@pytest.mark.parametrize("bad", [{"share": 1.5}, {"chunks": (0, 3)}, {"chunks": (5, 4)},
                                 {"pace_seconds": 0.0}])
def test_a_mix_that_cannot_be_played_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="share in"):
        SessionMix(**bad)  # type: ignore[arg-type]


def _traffic(**kw: object) -> Traffic:
    return Traffic({"eu": np.array([0.5, 1.5])}, dict, "m", **kw)  # type: ignore[arg-type]


def test_the_offered_rate_counts_the_sessions_chunks_beside_the_requests() -> None:
    traffic = _traffic(streaming=True, sessions={"eu": [Session(0.2, 4, 1)]}, pace=1.0)
    traffic.started_at = 100.0
    assert traffic.offered_rate("eu", now=104.0, window=4.0) == pytest.approx((2 + 4) / 4)
    assert [(due, session) for due, _, _, session in traffic.schedule()] == [
        (0.2, Session(0.2, 4, 1)), (0.5, None), (1.5, None)]
    assert traffic.tail_seconds == pytest.approx(3.0 + 10.0)


def test_sessions_without_a_streaming_model_are_refused() -> None:
    with pytest.raises(ValueError, match="streaming"):
        _traffic(sessions={"eu": [Session(0.0, 4, 1)]})


def _record(answers: list[str], ended: bool) -> StreamRecord:
    return StreamRecord(1, [Answer(0.0, 0.1, error=e) for e in answers], ended=ended)


def test_stream_figures_count_opened_ended_cut_and_the_views_peak_per_shard() -> None:
    sessions = [
        SessionResult("eu", "w1", 2, _record(["", ""], ended=True)),
        SessionResult("eu", "w1", 3, _record(["", "worker gone"], ended=False)),
        SessionResult("us", "", 4, StreamRecord(0)),  # no Ready worker: never opened
    ]
    samples = [Sample(t, shard, None, None, None, None, None, 1, 1, 0, 1, "-", "-", "", streams)
               for t, shard, streams in ((0, "eu", 2.0), (2, "eu", 5.0), (4, "eu", 1.0), (0, "us", None))]
    drains = [Drain("p1", "eu", 50.0, 100.0, streams_at_deletion=3.0, drained_at=109.0, exited_at=111.5),
              Drain("p2", "eu", 50.0, 100.0, streams_at_deletion=0.0, drained_at=105.0, exited_at=107.0)]
    figures = stream_figures(sessions, samples, drains)
    assert (figures.opened, figures.ended, figures.cut, figures.unopened, figures.chunks) == (2, 1, 1, 1, 4)
    assert figures.peak_live == {"eu": 5.0, "us": None}
    assert (figures.drained, figures.held_at_deletion, figures.longest_exit_seconds) == (2, 3.0, 11.5)
    assert "1 cut" in figures.line() and "eu 5, us -" in figures.line()
    assert "drained 2 workers holding 3 streams at deletion, the longest exited 11.5 s" in figures.line()


def test_the_summary_prints_a_streams_line_only_for_a_run_with_sessions() -> None:
    base = Summary(10, 500.0, 1.0, 1.0, 5.0, 8.0, {"eu": 2}, 2, 20.0, 0, 30.0, 180.0, 3)
    with_streams = Summary(**{**base.__dict__, "streams": StreamFigures(1, 1, 0, 0, 4, 120.0, {"eu": 3.0})})
    assert not any(line.startswith("streams:") for line in base.lines())
    started = "streams: 1 sessions started, 1 completed, 0 cut"
    assert any(line.startswith(started) for line in with_streams.lines())
