"""Engine answers kept for as long as the index does not change.

An engine answer (a stored demand's partners, a typed text's partners, the demands for a
partner or a text) is a function of the engine's state and the question alone: the query's
content, k and the filters. `LiveIndex` empties the cache, holding its write lock, before
anything changes the engine (a write that touches a record, a catch-up that replays one, a
rebuild, a load, a ranker deployed); answers are stored only under the read lock. So an answer
is served again only at the state that computed it, and every process still serves what the
database holds (it catches up, and so empties its cache, before a read). A write that touches
no record (feedback, a token, a review decision) leaves the engine, and so the answers, as
they are.

What the service adds to an answer (current names, who may see what, rejections, the
impressions recorded) is read from the database on every request, as before.

At 42k capabilities a stored demand's match is about 15 ms of engine work; asked again (a page
opened again, the API after the page), its kept answer costs 0.08 ms to unpickle
(docs/performance.md, session 16).
"""

from __future__ import annotations

import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from matcher.records import Demand

T = TypeVar("T")


def question_key(kind: str, query: Demand | str, *rest: Hashable) -> tuple:
    """The cache key of a question: `kind` names the engine call, `query` is a demand (all
    its fields, `extra` too) or a text, `rest` the call's other arguments (k, filters...)."""
    if isinstance(query, Demand):  # `extra` is left out of a demand's hash, and may hold lists
        return (kind, "demand", query, json.dumps(query.extra, sort_keys=True, ensure_ascii=False, default=str), *rest)
    return (kind, "text", str(query), *rest)


class AnswerCache:
    """Answers (and their keys) of at most `size_bytes` in all, least recently used dropped first
    (0: none kept).

    An answer is kept pickled: bytes the garbage collector never scans (as objects, 256 answers
    of ten partners were 7 MB of small objects for every full collection to walk), half the
    size (12 kB an answer at 42k capabilities), and every hit gets its own copy, so no caller
    can change what the next one is served. Pickling and unpickling one cost 0.08 ms each.
    Only this process's own engine results are pickled here; nothing from outside is loaded."""

    def __init__(self, size_bytes: int) -> None:
        if size_bytes < 0:
            raise ValueError(f"answer cache size must be at least 0, not {size_bytes}")
        self.size = size_bytes
        self._items: OrderedDict[Hashable, tuple[bytes, int]] = OrderedDict()  # key -> (answer, cost)
        self._held = 0
        self._lock = threading.Lock()  # many readers share the cache
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer kept under `key`, else `compute()` (kept). Two readers asking the same new
        question at once both compute it: the same answer, and no reader waits on another."""
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if kept is not None:
            return pickle.loads(kept[0])
        value = compute()
        if self.size:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            # the key counts too: a demand's text, larger than a short answer
            cost = len(blob) + len(pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL))
            if cost <= self.size:
                with self._lock:
                    if key not in self._items:  # another reader may have kept it meanwhile
                        self._items[key] = (blob, cost)
                        self._held += cost
                    while self._held > self.size:
                        _, (_, dropped) = self._items.popitem(last=False)
                        self._held -= dropped
        return value

    @property
    def held(self) -> int:
        """Bytes held now (answers and keys, pickled)."""
        return self._held

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    def __len__(self) -> int:
        return len(self._items)
