"""Ring buffers the console keeps in memory: per-database samples for the charts and recent events.
Pure data structures (the caller passes the time)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class StatsHistory:
    """(time, used memory, ops/s) per database, the last `size` samples, at most one per `every_s`."""

    def __init__(self, size: int = 180, every_s: float = 2.0) -> None:
        self.size = size
        self.every_s = every_s
        self._samples: dict[int, deque[tuple[float, float, float]]] = {}

    def add(self, uid: int, now: float, used_memory: float, ops: float) -> bool:
        ring = self._samples.setdefault(uid, deque(maxlen=self.size))
        if ring and now - ring[-1][0] < self.every_s:
            return False
        ring.append((now, used_memory, ops))
        return True

    def keep_only(self, uids: Iterable[int]) -> None:
        wanted = set(uids)
        for uid in [u for u in self._samples if u not in wanted]:
            del self._samples[uid]

    def memory(self, uid: int) -> list[tuple[float, float]]:
        return [(t, m) for t, m, _ in self._samples.get(uid, ())]

    def ops(self, uid: int) -> list[tuple[float, float]]:
        return [(t, o) for t, _, o in self._samples.get(uid, ())]


class EventLog:
    """The last `size` events, oldest first, each {time, text}."""

    def __init__(self, size: int = 50) -> None:
        self._events: deque[dict[str, str]] = deque(maxlen=size)

    def add(self, when: str, texts: Iterable[str]) -> None:
        for text in texts:
            self._events.append({"time": when, "text": text})

    def recent(self) -> list[dict[str, str]]:
        return list(self._events)
