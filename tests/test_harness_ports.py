"""The harness's start-on-a-free-port retry: a taken port is retried, any other failure is not."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from voxscale_lab.harness.ports import start_on_free_port


@dataclass
class FakePart:
    """A part whose readiness and log are scripted; records whether it was stopped."""

    port: int
    ready: bool
    log: str = ""
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True

    def log_tail(self) -> str:
        return self.log


@dataclass
class Script:
    """Hands out parts in order: (ready, log) per attempt."""

    outcomes: list[tuple[bool, str]]
    started: list[FakePart] = field(default_factory=list)

    def start(self, port: int) -> FakePart:
        ready, log = self.outcomes[len(self.started)]
        part = FakePart(port, ready, log)
        self.started.append(part)
        return part


def ready(part: FakePart) -> bool:
    return part.ready


def test_a_part_ready_at_once_is_returned_unstopped() -> None:
    script = Script([(True, "")])
    part = start_on_free_port(script.start, ready, name="p", port_taken="in use")
    assert part is script.started[0] and not part.stopped and part.port > 0


def test_a_taken_port_is_stopped_and_retried_on_another_port() -> None:
    script = Script([(False, "bind: address in use"), (True, "")])
    part = start_on_free_port(script.start, ready, name="p", port_taken="in use")
    assert len(script.started) == 2 and script.started[0].stopped and part is script.started[1]


def test_any_other_failure_raises_the_given_error_with_the_log_at_once() -> None:
    class PartError(RuntimeError):
        pass

    script = Script([(False, "config rejected"), (True, "")])
    with pytest.raises(PartError, match="p did not become ready:\nconfig rejected"):
        start_on_free_port(script.start, ready, name="p", port_taken="in use", error=PartError)
    assert len(script.started) == 1 and script.started[0].stopped


def test_a_port_taken_on_every_attempt_raises_no_free_port() -> None:
    script = Script([(False, "in use")] * 3)
    with pytest.raises(RuntimeError, match="p found no free port"):
        start_on_free_port(script.start, ready, name="p", port_taken="in use", attempts=3)
    assert len(script.started) == 3 and all(p.stopped for p in script.started)
