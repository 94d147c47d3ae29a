"""Run users' top-n with their reasons, computed once and kept as arrays, so that a recommendation request for
a user of the run is a lookup.

Each list is what the present per-request computation gives for n = ``depth`` (``recommend`` then
``explain_ranked``, the same calls), so its answers are those of that computation. A request for n < depth is
served by the list's first n entries when that is provably the same answer: no two equal scores in the list
(the top-n of a tie could differ) and n at least the list's stable prefix (the reasons' rounding floor depends on
the items listed; see ``personas.recommend.base.stable_prefix``). Everything else (n above the depth, users with
events since the run, new users) takes the per-request path.

Lists are filled in a background thread from the start of serving and on a user's first request, whichever
comes first. Memory: per user and slot an int32 item, a float64 score, an int32 ``because_of`` item, an int32
group and a uint8 part code (21 bytes), plus 3 bytes per user: depth 20 is 423 bytes per user (42 MB for 10^5
users, 423 MB for 10^6), in each worker process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import numpy as np

from personas.recommend import Reason, Recommender

__all__ = ["TopLists"]

logger = logging.getLogger(__name__)

#: Rows filled per batch by the background thread between checks for shutdown.
_BATCH = 64


class TopLists:
    """Top-``depth`` lists (item rows, scores, reasons) of the model's users, by model row."""

    def __init__(self, model: Recommender, groups: np.ndarray, depth: int) -> None:
        self.model = model
        self.depth = depth
        self.user_ids: list[str] = [str(u) for u in model.user_vocab_.ids]
        self.groups = np.asarray(groups, dtype=np.int64)  # each model row's persona (-1: none)
        users = len(self.user_ids)
        self.items = np.full((users, depth), -1, dtype=np.int32)
        self.scores = np.zeros((users, depth), dtype=np.float64)
        self.because = np.full((users, depth), -1, dtype=np.int32)
        self.reason_group = np.full((users, depth), -1, dtype=np.int32)
        self.part = np.zeros((users, depth), dtype=np.uint8)
        self.length = np.zeros(users, dtype=np.uint8 if depth < 256 else np.int32)
        self.stable_from = np.zeros(users, dtype=np.uint8 if depth < 256 else np.int32)
        self.ready = np.zeros(users, dtype=bool)
        self.part_names: list[str | None] = [None]  # code -> Reason.part
        self._part_codes: dict[str | None, int] = {None: 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def nbytes(self) -> int:
        arrays = (self.items, self.scores, self.because, self.reason_group, self.part, self.length, self.stable_from)
        return sum(a.nbytes for a in arrays) + self.ready.nbytes

    def seen(self, row: int) -> np.ndarray:
        indptr, indices = self.model.seen_.indptr, self.model.seen_.indices
        return indices[indptr[row] : indptr[row + 1]].astype(np.int64)

    # -- filling ----------------------------------------------------------------------------------------
    def fill(self, row: int) -> None:
        """Compute one user's list, exactly as the per-request path would for n = depth."""
        if self.ready[row]:
            return
        rec = self.model.recommend([self.user_ids[row]], self.depth)
        ids = [int(i) for i in rec.ids[0] if i >= 0][: self.depth]
        scores = np.asarray(rec.scores[0][: len(ids)], dtype=np.float64)
        group = int(self.groups[row])
        reasons, stable = self.model.explain_ranked(ids, history=self.seen(row), group=group)
        if len(np.unique(scores)) < len(scores):
            stable = len(ids)  # a tie: a shorter top-n may hold the other item, so only the whole list is served
        if any(r.words for r in reasons):
            return  # words come from a user's text, which run users are not served with; never cached
        count = len(ids)
        self.items[row, :count] = ids
        self.scores[row, :count] = scores
        self.because[row, :count] = [r.because_of for r in reasons]
        self.reason_group[row, :count] = [-1 if r.group is None else r.group for r in reasons]
        self.part[row, :count] = [self._code(r.part) for r in reasons]
        self.length[row] = count
        self.stable_from[row] = stable
        self.ready[row] = True  # last: a reader that sees it sees the arrays written

    def _code(self, part: str | None) -> int:
        code = self._part_codes.get(part)
        if code is None:
            code = len(self.part_names)
            self.part_names.append(part)
            self._part_codes[part] = code
        return code

    def fill_all(self, rows: Sequence[int] | None = None) -> None:
        for row in range(len(self.user_ids)) if rows is None else rows:
            if self._stop.is_set():
                return
            self.fill(row)

    def start(self) -> None:
        """Fill every list in a background thread (requests fill the ones they need first)."""
        if self._thread is not None or not len(self.user_ids):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._fill_in_background, name="personas-precompute", daemon=True)
        self._thread.start()

    def _fill_in_background(self) -> None:
        started = time.perf_counter()
        try:
            for first in range(0, len(self.user_ids), _BATCH):
                self.fill_all(range(first, min(first + _BATCH, len(self.user_ids))))
                if self._stop.is_set():
                    return
        except Exception:  # a failure here must not stop serving: requests compute what is missing themselves
            logger.exception("Precomputing the run users' recommendations failed; they are computed per request")
            return
        logger.info(
            "Top-%d recommendations of %d run users precomputed in %.1f s (%.1f MB)",
            self.depth,
            len(self.user_ids),
            time.perf_counter() - started,
            self.nbytes / 1e6,
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- reading --------------------------------------------------------------------------------------
    def answer(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray, list[Reason]] | None:
        """The first n of a user's list (item rows, scores, reasons), or None when the list cannot give the
        per-request answer for this n (n above the depth, or below the list's stable prefix)."""
        if n > self.depth:
            return None
        if not self.ready[row]:
            self.fill(row)
            if not self.ready[row]:
                return None
        if n < self.depth and n < self.stable_from[row]:
            return None
        count = min(n, int(self.length[row]))
        names = self.part_names
        reasons = [
            Reason(int(b), None if g < 0 else int(g), names[p])
            for b, g, p in zip(
                self.because[row, :count].tolist(),
                self.reason_group[row, :count].tolist(),
                self.part[row, :count].tolist(),
                strict=True,
            )
        ]
        return self.items[row, :count], self.scores[row, :count], reasons
