"""The small value each decision step returns: a replica count and the lines that explain it."""

from __future__ import annotations

from typing import NamedTuple


class Need(NamedTuple):
    """Replicas a term asks for (None = the term has nothing to say) and why."""

    replicas: int | None
    reasons: tuple[str, ...] = ()
