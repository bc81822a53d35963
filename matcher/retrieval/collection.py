"""A searchable, editable set of texts: embeddings in a vector index plus BM25 over tokens.

Multilingual encoders score any query higher against texts in its own language, whatever
the topic (measured with e5-small on the demo corpus: a Chinese demand scores 0.92-0.95
against unrelated Chinese capabilities and about 0.80 against the relevant Russian ones).
So dense scores are standardised per document language: z = (cos(q, d) - q.mu_L) / sqrt(q' S_L q),
where mu_L and S_L are the mean and covariance of the vectors of d's language L, i.e. the
mean and spread of the query's cosines over that language, computed exactly without
scanning. Nearest neighbours are searched per language (the transform is monotone within
one), so a small English or Russian group is never crowded out by the majority language.

Rows are append-only; an edit removes the old row and appends a new one, a delete marks the
row dead everywhere (vector index, BM25 document frequencies, the alive mask), so a removed
record can never come back in results.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFoundError
from matcher.fsutil import atomic_npy, atomic_text
from matcher.retrieval.index import SMALL_BATCH, IndexParams, VectorIndex, inner_products
from matcher.retrieval.lexical import BM25
from matcher.retrieval.text import chinese_share

EXACT_SCORES_PER_BLOCK = 16_000_000  # query x row scores held at once by exact search (64 MB)

LANGUAGE_PRIOR_ROWS = 4
JOURNAL_ROWS = 4096  # rows of recent language-statistics changes kept for `changes_since`
STATS_BLOCK = 4096  # rows converted to float64 at a time for the language statistics
# rows converted to float64 at a time by `products64`: the block stays in the cache between its
# conversion and its product, and no float64 copy of thousands of rows is ever written (at 42k
# capabilities a stored demand's partners own about 7,000 rows, whose copy cost 2.5 ms)
PRODUCT_BLOCK = 256


@dataclass(frozen=True)
class LanguageStats:
    names: list[str]
    means: NDArray[np.float32]  # (n_languages, dim)
    covs: NDArray[np.float32]  # (n_languages, dim, dim)
    counts: NDArray[np.float64]  # (n_languages,)
    overall_mean: NDArray[np.float32]  # (dim,)

    def offsets_and_scales(
        self, q: NDArray[np.float32], dense: NDArray[np.float32], lang: NDArray[np.int64]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """For one query q (dim,) and candidate rows with cosines `dense` in languages `lang`:
        the mean of the query's cosines over the *other* rows of each row's language (so a
        row never lowers its own score; a language of one row falls back to all rows), and
        their spread."""
        mean_cos = self.means @ q  # (n_languages,)
        n = self.counts[lang]
        loo = np.where(n > 1, (n * mean_cos[lang] - dense) / np.maximum(n - 1, 1), float(self.overall_mean @ q))
        spread = np.sqrt(np.maximum((self.covs @ q) @ q, 1e-8))  # q' C_l q per language, via BLAS
        return loo.astype(np.float32), spread[lang].astype(np.float32)


@dataclass(frozen=True)
class Candidates:
    """Candidate rows for one query with both raw scores (arrays of equal length)."""

    rows: NDArray[np.int64]
    dense: NDArray[np.float32]  # cosine similarity
    lexical: NDArray[np.float32]  # raw BM25
    lexical_scale: float  # the query's maximum attainable BM25 score
    coverage: float  # share of query tokens known to the corpus vocabulary
    offset: NDArray[np.float32] | None = None  # the query's mean cosine over the row's language
    scale: NDArray[np.float32] | None = None  # and the spread of those cosines
    chinese_share: float = 0.0  # share of query tokens that are Chinese words (see rank.FusionParams)

    @property
    def centred(self) -> NDArray[np.float32]:
        """Dense scores standardised within each document language (see module docstring)."""
        if self.offset is None:
            return self.dense
        return (self.dense - self.offset) / (self.scale if self.scale is not None else 1.0)


@dataclass(frozen=True)
class PairScores:
    """Raw scores of every (query, row) pair of a block; arrays are (n_queries, n_rows).

    Nothing here depends on which other rows are scored, filtered or shown: the parts of a
    calibrated fit (see `calibration`)."""

    dense: NDArray[np.float64]  # cosine similarity
    lexical: NDArray[np.float32]  # raw BM25
    lexical_scale: NDArray[np.float32]  # (n_queries,) the query's maximum attainable BM25
    offset: NDArray[np.float64]  # the query's mean cosine over the row's language (0 if not centred)
    scale: NDArray[np.float64]  # and their spread (1 if not centred)
    # The rows' view (see `Collection.population_scores`): the cosine of the query text's passage
    # vector with the row, its mean over the query side's texts of the query's language, their spread
    other_dense: NDArray[np.float64] | None = None
    other_offset: NDArray[np.float64] | None = None
    other_scale: NDArray[np.float64] | None = None

    @property
    def centred(self) -> NDArray[np.float32]:
        return (self.dense - self.offset) / self.scale

    @property
    def other_centred(self) -> NDArray[np.float64]:
        """The pair standardised from the row's side; `centred` when the query side has no texts."""
        if self.other_dense is None:
            return self.centred
        return (self.other_dense - self.other_offset) / self.other_scale


class Collection:
    def __init__(self, dim: int, index: IndexParams | None = None, center_languages: bool = True) -> None:
        self.dim = dim
        self.center_languages = center_languages
        self.index_params = index or IndexParams()
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.tokens: list[list[str]] = []
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)
        self.langs: list[str] = []
        self._lang_sum: dict[str, NDArray[np.float64]] = {}
        self._lang_outer: dict[str, NDArray[np.float64]] = {}
        self._lang_count: dict[str, int] = {}
        self._lang_cache: tuple | None = None
        self.version = 0  # counts changes of the rows' language statistics
        self._journal: list[tuple[int, str, NDArray[np.float32], int]] = []  # see `changes_since`
        self._journal_floor = 0
        self.bm25 = BM25().fit_tokens([])
        self.index = self._new_index()

    def _new_index(self) -> VectorIndex | None:
        """The exact kind needs no index of its own: it scores `_vectors`, which the collection
        keeps anyway (a FAISS flat index held a second copy: 65 MB at 42k x 384)."""
        if self.index_params.kind == "exact":
            return None
        empty = np.zeros((0, self.dim), np.float32)
        return VectorIndex(self.dim, self.index_params).build(empty, np.zeros(0, np.int64))

    # -- editing ---------------------------------------------------------------------------
    def add(
        self,
        ids: Sequence[str],
        tokens: Sequence[list[str]],
        vectors: NDArray[np.float32],
        languages: Sequence[str] | None = None,
    ) -> None:
        """Insert or replace records. vectors: (n, dim) float32 L2-normalised; languages: the
        texts' languages ("zh", "en", ...; "" when unknown), used to centre dense scores."""
        if len(ids) != len(tokens) or len(ids) != len(vectors):
            raise MatcherError("ids, tokens and vectors must have the same length")
        if len(set(ids)) != len(ids):
            raise MatcherError("duplicate ids in one add() call")
        if not len(ids):
            return
        if not self.ids:
            # First load: fit BM25 on the whole batch so avgdl reflects the corpus.
            self.bm25 = BM25().fit_tokens(list(tokens))
        else:
            self.remove([i for i in ids if i in self.row_of])
            self.bm25.partial_add(list(tokens))
        start = len(self.ids)
        rows = np.arange(start, start + len(ids), dtype=np.int64)
        self.ids.extend(ids)
        self.row_of.update({rid: int(r) for rid, r in zip(ids, rows)})
        self.tokens.extend(interned(t) for t in tokens)
        if start == 0 and not len(self._vectors):
            # The first load keeps the caller's array (when already float32 and contiguous)
            # instead of a copy: a second 65 MB at 42k capabilities at the height of a start.
            self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        else:
            self._vectors = np.vstack([self._vectors, np.asarray(vectors, dtype=np.float32)])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        langs = list(languages) if languages is not None else [""] * len(ids)
        self.langs.extend(langs)
        self._count_languages(langs, np.asarray(vectors), +1)
        if self.index is not None and start == 0:
            self.index.build(self._vectors, rows)  # approximate indexes train on the data
        elif self.index is not None:
            self.index.add(np.asarray(vectors, dtype=np.float32), rows)

    def remove(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if i not in self.row_of]
        if missing:
            raise NotFoundError(f"unknown id(s): {', '.join(missing[:10])}")
        rows = np.array([self.row_of.pop(i) for i in ids], dtype=np.int64)
        if not len(rows):
            return
        self._alive[rows] = False
        self._count_languages([self.langs[r] for r in rows], self._vectors[rows], -1)
        if self.index is not None:
            self.index.remove(rows)
        self.bm25.forget_rows(rows)
        for r in rows:
            self.tokens[r] = []

    def _count_languages(self, langs: Sequence[str], vectors: NDArray[np.floating], sign: int) -> None:
        """vectors: the rows' vectors as given; each language's rows are summed in float64, a
        block of STATS_BLOCK rows at a time (a float64 copy of all rows, then each language's,
        held 260 MB at 42k capabilities while a service started; a copy of one language's, 130 MB)."""
        version = self.version + 1
        keep = len(langs) <= JOURNAL_ROWS  # a bulk load is not kept: nothing could follow it cheaply
        changes = []
        for lang in set(langs):
            pick = np.fromiter((lg == lang for lg in langs), dtype=bool, count=len(langs))
            row_sum, row_outer = np.zeros(self.dim), np.zeros((self.dim, self.dim))
            for start in range(0, len(pick), STATS_BLOCK):
                block = slice(start, start + STATS_BLOCK)
                v = np.asarray(vectors[block][pick[block]], dtype=np.float64)
                row_sum += v.sum(axis=0)
                row_outer += v.T @ v
            total = self._lang_sum.get(lang, np.zeros(self.dim)) + sign * row_sum
            outer = self._lang_outer.get(lang, np.zeros((self.dim, self.dim))) + sign * row_outer
            count = self._lang_count.get(lang, 0) + sign * int(pick.sum())
            if count > 0:
                self._lang_sum[lang], self._lang_outer[lang], self._lang_count[lang] = total, outer, count
            else:
                for table in (self._lang_sum, self._lang_outer, self._lang_count):
                    table.pop(lang, None)
            if keep:
                changes.append((version, lang, np.asarray(vectors[pick], dtype=np.float32), sign))
        self._record(version, changes, complete=keep)
        self._lang_cache = None  # languages changed: recompute stats and row index on next search
        self.version = version

    def _record(self, version: int, changes: list, complete: bool) -> None:
        """Keep the last JOURNAL_ROWS changed rows for `changes_since`."""
        if not complete:
            self._journal, self._journal_floor = [], version
            return
        self._journal.extend(changes)
        rows = sum(len(c[2]) for c in self._journal)
        while rows > JOURNAL_ROWS:
            dropped = self._journal.pop(0)
            rows -= len(dropped[2])
            self._journal_floor = dropped[0]

    def changes_since(self, version: int) -> list[tuple[str, NDArray[np.float32], int]] | None:
        """The rows whose language statistics changed after `version`, as (language, vectors,
        +1 added / -1 removed) in order, or None when some of them are no longer kept."""
        if version > self.version or version < self._journal_floor:
            return None
        return [(lang, v, sign) for ver, lang, v, sign in self._journal if ver > version]

    def language_counts(self) -> dict[str, int]:
        """Live rows per language."""
        return dict(self._lang_count)

    def projections(self, others: NDArray[np.floating]) -> tuple[list[str], NDArray[np.float64],
                                                                  NDArray[np.float64], NDArray[np.float64]]:
        """Each outside vector o projected on this collection's live rows, per language l (sorted
        names): (names, counts (L,), sum of (o.x)^2 (L, no), sum of o.x (L, no)). Additive over
        rows, so `view_of_projections` can follow added and removed rows without a pass over the
        covariances (`changes_since`)."""
        names = sorted(self._lang_count)
        others64 = np.asarray(others, np.float64).reshape(-1, self.dim)
        counts = np.array([self._lang_count[n] for n in names], dtype=np.float64)
        squares = np.array([((others64 @ self._lang_outer[n]) * others64).sum(axis=1) for n in names])
        sums = np.array([others64 @ self._lang_sum[n] for n in names])
        shape = (len(names), len(others64))
        return names, counts, squares.reshape(shape), sums.reshape(shape)

    def views_of(self, others: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(means, spreads), each (n_languages + 1, no): the mean cosine of each outside vector
        over this collection's rows of each language and its spread sqrt(o' C_l o) with the
        shrunk covariance of `language_stats`; last row: over all rows, and the pooled spread."""
        _, counts, squares, sums = self.projections(others)
        return view_of_projections(counts, squares, sums)

    def language_stats(self, always: bool = False) -> LanguageStats | None:
        """Mean vector, covariance and size of each language among the live rows.

        Covariances of small languages are shrunk towards the pooled within-language
        covariance with LANGUAGE_PRIOR_ROWS pseudo-rows (shrinking towards the covariance of
        all rows would add the between-language spread and undo the correction)."""
        names = sorted(self._lang_count)
        if not names or not (self.center_languages or always):
            return None
        counts = np.array([self._lang_count[n] for n in names], dtype=np.float64)
        means = np.stack([self._lang_sum[n] for n in names]) / counts[:, None]
        covs = np.stack([self._lang_outer[n] for n in names]) / counts[:, None, None] - np.einsum(
            "ld,le->lde", means, means
        )
        pooled = np.einsum("l,lde->de", counts, covs) / counts.sum()
        m = LANGUAGE_PRIOR_ROWS
        covs = (counts[:, None, None] * covs + m * pooled) / (counts[:, None, None] + m)
        overall = sum(self._lang_sum.values()) / counts.sum()
        return LanguageStats(
            names, means.astype(np.float32), covs.astype(np.float32), counts, overall.astype(np.float32)
        )

    def __len__(self) -> int:
        return len(self.row_of)

    def live_ids(self) -> list[str]:
        """Ids of the live rows, each once, in row order. `ids` keeps a replaced or removed
        record's dead rows too (rows are never renumbered), so it can name an id twice."""
        return [self.ids[r] for r in np.flatnonzero(self._alive)]

    def __contains__(self, rid: str) -> bool:
        return rid in self.row_of

    @property
    def vectors(self) -> NDArray[np.float32]:
        """(n_rows, dim) float32, dead rows included (use `alive`)."""
        return self._vectors

    @property
    def alive(self) -> NDArray[np.bool_]:
        return self._alive

    def vector(self, rid: str) -> NDArray[np.float32]:
        return self._vectors[self.row_of[rid]]

    def products64(self, rows: NDArray[np.int64], blocks: Sequence[NDArray[np.floating]]) -> list[NDArray[np.float64]]:
        """Each (n_i, dim) block of vectors against the rows' vectors, in float64: a pair's
        cosine must not move in the last bits with the shape of the block (float32 BLAS sums in
        block-dependent order), or a filter could move its fit. Returns one (n_i, len(rows))
        array per block."""
        rows = np.asarray(rows, dtype=np.int64)
        blocks = [np.asarray(b, np.float64).reshape(-1, self.dim) for b in blocks]
        stacked = np.vstack(blocks)
        out = np.empty((len(stacked), len(rows)))
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self._vectors)):
            raise IndexError(f"row out of range 0..{len(self._vectors) - 1}")
        # Block buffers reused for the whole call and a gather that need not check each row (done
        # above once): fancy indexing and a fresh float64 copy per block cost 3.1 ms at 42k
        # capabilities (7,000 rows a request), this 1.6 ms (docs/performance.md, session 15).
        gathered = np.empty((min(PRODUCT_BLOCK, len(rows)), self.dim), self._vectors.dtype)
        wide = np.empty(gathered.shape)
        for start in range(0, len(rows), PRODUCT_BLOCK):
            block = rows[start : start + PRODUCT_BLOCK]
            n = len(block)
            np.take(self._vectors, block, axis=0, out=gathered[:n], mode="clip")
            wide[:n] = gathered[:n]
            np.matmul(stacked, wide[:n].T, out=out[:, start : start + n])
        bounds = np.cumsum([0, *map(len, blocks)])
        return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    # -- searching -------------------------------------------------------------------------
    def candidates(
        self,
        qvecs: NDArray[np.float32],
        qtokens: Sequence[list[str]],
        *,
        depth: int = 200,
        allowed: NDArray[np.bool_] | None = None,
        qmat: sp.csr_matrix | None = None,
    ) -> list[Candidates]:
        """For each query, the union of its `depth` best rows by dense and by lexical score.

        qvecs: (nq, dim); allowed: optional (n_rows,) mask of rows that may be returned; qmat:
        `bm25.query_matrix(qtokens)` when the caller has it."""
        mask = self._alive if allowed is None else (self._alive & allowed)
        n_live = int(mask.sum())
        if n_live == 0:
            empty = np.zeros(0, np.float32)
            return [Candidates(np.zeros(0, np.int64), empty, empty, 1.0, 0.0) for _ in qtokens]
        depth = min(depth, n_live)
        stats, lang_idx = self._language_state()
        names = stats.names if stats else []
        dense_top = self._dense_top(qvecs, depth, mask if allowed is not None else None, lang_idx, len(names))
        if qmat is None:  # built once for both uses below
            qmat = self.bm25.query_matrix(qtokens)
        lexical_rows = self._lexical_rows(qmat, mask if allowed is not None else None)
        lex_scales = self.bm25.max_scores(qtokens, qmat)
        coverage = self.bm25.coverage(qtokens)
        out = []
        for q in range(len(qtokens)):
            lex_rows, lex_vals = lexical_rows[q]  # rows with a lexical score, ascending
            top_lex = lex_rows
            if len(lex_rows) > depth:
                top_lex = lex_rows[np.argpartition(-lex_vals, depth - 1)[:depth]]
            rows = np.union1d(dense_top[q], top_lex).astype(np.int64)
            rows = rows[mask[rows]]
            dense = self._vectors[rows] @ np.asarray(qvecs[q], dtype=np.float32)
            lexical = _values_at(lex_rows, lex_vals, rows)
            offset = scale = None
            if stats is not None:
                offset, scale = stats.offsets_and_scales(np.asarray(qvecs[q], np.float32), dense, lang_idx[rows])
            out.append(
                Candidates(
                    rows,
                    dense.astype(np.float32),
                    lexical,
                    float(lex_scales[q]) or 1.0,
                    float(coverage[q]),
                    offset,
                    scale,
                    chinese_share(qtokens[q]),
                )
            )
        return out

    def pair_scores(
        self, qvecs: NDArray[np.float32], qmat: sp.csr_matrix, rows: NDArray[np.int64],
        dense: NDArray[np.float64] | None = None,
    ) -> PairScores:
        """Scores of each query against the given rows (live or not), computed the same way as
        `candidates` computes them, so a pair scores the same whichever way it is reached.

        qvecs: (nq, dim) query vectors; qmat: `bm25.query_matrix(qtokens)`; rows: (nr,);
        dense: the cosines (`products64(rows, [qvecs])[0]`) when the caller has them."""
        rows = np.asarray(rows, dtype=np.int64)
        qvecs = np.asarray(qvecs, dtype=np.float32)
        if dense is None:
            (dense,) = self.products64(rows, [qvecs])
        lexical = self.bm25.score_rows(qmat, rows) if len(rows) else np.zeros((len(qvecs), 0), np.float32)
        scale_q = self.bm25.max_scores([], qmat)
        stats, lang_idx = self._language_state(always=True)
        offset, spread = self.language_offsets(qvecs, dense, lang_idx[rows] if len(rows) else lang_idx[:0], stats)
        return PairScores(dense, lexical, np.where(scale_q > 0, scale_q, 1.0).astype(np.float32), offset, spread)

    def external_pair_scores(
        self, qvecs: NDArray[np.float32], qmat: sp.csr_matrix, vector: NDArray[np.float32], tokens: Sequence[str],
        language: str,
    ) -> PairScores:
        """`pair_scores` of queries against one text that is not in the collection (e.g. a text an
        institute typed), scored as if it were one more row in `language`."""
        qvecs = np.asarray(qvecs, dtype=np.float32)
        dense = (qvecs.astype(np.float64) @ np.asarray(vector, np.float64))[:, None]
        lexical = np.asarray((qmat @ self.bm25.document_weights(tokens).T).todense(), dtype=np.float32).reshape(-1, 1)
        scale_q = self.bm25.max_scores([], qmat)
        stats, _ = self._language_state(always=True)
        lang = np.array([stats.names.index(language) if stats and language in stats.names else -1], dtype=np.int64)
        offset, spread = self.language_offsets(qvecs, dense, lang, stats, leave_out=False)
        return PairScores(dense, lexical, np.where(scale_q > 0, scale_q, 1.0).astype(np.float32), offset, spread)

    @staticmethod
    def language_offsets(
        qvecs: NDArray[np.float32],
        dense: NDArray[np.float32],
        row_langs: NDArray[np.int64],
        stats: LanguageStats | None,
        leave_out: bool = True,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(nq, nr) offsets and spreads of `LanguageStats.offsets_and_scales` for many queries at
        once; a row of unknown language (-1) is compared with all rows."""
        shape = dense.shape
        if stats is None:
            return np.zeros(shape), np.ones(shape)
        qvecs = np.asarray(qvecs, np.float64)  # per-query sums in one precision, whatever the block
        covs = stats.covs.astype(np.float64)
        mean_cos = qvecs @ stats.means.T.astype(np.float64)  # (nq, n_languages)
        spread = np.sqrt(np.maximum(np.stack([((qvecs @ c) * qvecs).sum(axis=1) for c in covs], axis=1), 1e-8))
        overall = qvecs @ stats.overall_mean.astype(np.float64)  # (nq,)
        known = row_langs >= 0
        li = np.where(known, row_langs, 0)
        n = np.where(known, stats.counts[li], 0.0)[None, :]
        base = mean_cos[:, li]
        if leave_out:
            loo = np.where(n > 1, (n * base - dense) / np.maximum(n - 1, 1), overall[:, None])
        else:
            loo = np.where(n > 0, base, overall[:, None])
        loo = np.where(known[None, :], loo, overall[:, None])
        pooled = np.sqrt(np.maximum(((qvecs @ covs.mean(axis=0)) * qvecs).sum(axis=1), 1e-8))
        spreads = np.where(known[None, :], spread[:, li], pooled[:, None])
        return loo, spreads

    def population_scores(
        self,
        pvecs: NDArray[np.float32],
        langs: Sequence[str],
        own_rows: NDArray[np.int64],
        others: NDArray[np.float32],
        spreads: NDArray[np.float64] | None = None,
        means: NDArray[np.float64] | None = None,
        dense: NDArray[np.float64] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
        """Texts of this collection's kind (passage vectors `pvecs` (nq, dim), languages `langs`)
        against outside vectors `others` (no, dim), seen from the outside: the cosine, the mean
        cosine of the other vector over this collection's live rows of the text's language (without
        the text's own row `own_rows[i]` when it is one, -1 when not; all rows when the language
        has none) and its spread there. Returns (dense, offset, scale), each (nq, no) float64, or
        None when the collection is empty. spreads, means: `views_of(others)` when already known;
        dense: `pvecs` against `others` in float64 when already known (then `others` is read
        only when the views are not given)."""
        stats, _ = self._language_state(always=True)
        if stats is None:
            return None
        pos = {name: i for i, name in enumerate(stats.names)}
        li = np.array([pos.get(lang, -1) for lang in langs], dtype=np.int64)
        if dense is None:
            dense = np.asarray(pvecs, np.float64).reshape(-1, self.dim) @ np.asarray(others, np.float64).reshape(
                -1, self.dim).T
        if means is None or spreads is None:
            means, spreads = self.views_of(np.asarray(others, np.float64).reshape(-1, self.dim))
        base = means[li]  # -1: the overall mean, the last row
        n = np.where(li >= 0, stats.counts[np.maximum(li, 0)], 0.0)[:, None]
        own = (np.asarray(own_rows) >= 0)[:, None]
        offset = np.where(own & (n > 1), (n * base - dense) / np.maximum(n - 1, 1), base)
        return dense, offset, spreads[li]

    def _lexical_rows(
        self, qmat: sp.csr_matrix, mask: NDArray[np.bool_] | None
    ) -> list[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """Per query, the rows with a non-zero BM25 score (ascending) and their scores."""
        if qmat.shape[0] <= SMALL_BATCH:  # a request: dense accumulation of the postings
            scores = self.bm25.score_dense(qmat)
            if mask is not None:
                scores = scores * mask
            return [(np.flatnonzero(s), s[np.flatnonzero(s)]) for s in scores]
        lex = self.bm25.score_tokens([], qmat)  # a batch: one sparse product
        if mask is not None:
            lex = lex.multiply(sp.csr_matrix(mask.astype(np.float32))).tocsr()
        lex.eliminate_zeros()
        lex.sort_indices()
        bounds = zip(lex.indptr[:-1], lex.indptr[1:])
        return [(lex.indices[start:end].astype(np.int64), lex.data[start:end]) for start, end in bounds]

    def _language_state(self, always: bool = False) -> tuple[LanguageStats | None, NDArray[np.int64]]:
        """`language_stats()` and the row language index, cached until the rows change (both
        cost O(n_rows) or O(dim^2) per call, too much to redo for every query). always: the
        statistics even when ranking does not centre (the fit's features always do)."""
        if always and not self.center_languages:
            stats = self.language_stats(always=True)
            return stats, self._language_index(stats.names if stats else [])
        cache = self._lang_cache
        if cache is None or cache[0] != self.center_languages:
            stats = self.language_stats()
            rows_lang = self._language_index(stats.names if stats else [])
            cache = self._lang_cache = (self.center_languages, stats, rows_lang)
        return cache[1], cache[2]

    def _language_index(self, names: list[str]) -> NDArray[np.int64]:
        """(n_rows,) position of each row's language in `names` (rows of a vanished language: -1)."""
        pos = {n: i for i, n in enumerate(names)}
        return np.fromiter((pos.get(lg, -1) for lg in self.langs), dtype=np.int64, count=len(self.langs))

    def _dense_top(
        self,
        qvecs: NDArray[np.float32],
        depth: int,
        mask: NDArray[np.bool_] | None,
        lang_idx: NDArray[np.int64],
        n_languages: int,
    ) -> list[NDArray[np.int64]]:
        """Each query's `depth` nearest rows within every language (the offset is constant there)."""
        qvecs = np.asarray(qvecs, dtype=np.float32)
        tops: list[list[NDArray[np.int64]]] = [[] for _ in range(len(qvecs))]
        if mask is not None:
            # Filtered: score the allowed rows exactly (filters usually leave few rows).
            for li in range(max(n_languages, 1)):
                rows = np.flatnonzero(mask & ((lang_idx == li) if n_languages > 1 else True))
                if not len(rows):
                    continue
                scores = inner_products(qvecs, self._vectors[rows])
                d = min(depth, scores.shape[1])
                top = np.argpartition(-scores, d - 1, axis=1)[:, :d]
                for q in range(len(qvecs)):
                    tops[q].append(rows[top[q]])
        elif self.index is None:
            return self._exact_top(qvecs, depth, lang_idx, n_languages)
        elif n_languages <= 1:
            _, ids = self.index.search(qvecs, depth)
            return [r[r >= 0] for r in ids]
        else:
            for li in range(n_languages):
                subset = np.flatnonzero(self._alive & (lang_idx == li))
                if not len(subset):
                    continue
                _, ids = self.index.search(qvecs, min(depth, len(subset)), subset=subset)
                for q in range(len(qvecs)):
                    tops[q].append(ids[q][ids[q] >= 0])
        return [np.concatenate(t) if t else np.zeros(0, np.int64) for t in tops]

    def _exact_top(
        self, qvecs: NDArray[np.float32], depth: int, lang_idx: NDArray[np.int64], n_languages: int
    ) -> list[NDArray[np.int64]]:
        """`_dense_top` for the exact kind: every live row scored by one matrix product."""
        groups = [self._alive] if n_languages <= 1 else [self._alive & (lang_idx == li) for li in range(n_languages)]
        columns = [np.flatnonzero(g) for g in groups]
        columns = [c for c in columns if len(c)]
        n_rows = len(self._vectors)
        tops: list[NDArray[np.int64]] = []
        step = max(1, EXACT_SCORES_PER_BLOCK // max(n_rows, 1))  # bounds the (queries, rows) block
        for start in range(0, len(qvecs), step):
            scores = inner_products(qvecs[start : start + step], self._vectors)
            parts = []
            for cols in columns:
                sub = scores if len(cols) == n_rows else scores[:, cols]
                d = min(depth, len(cols))
                top = np.argpartition(-sub, d - 1, axis=1)[:, :d]
                parts.append(top if len(cols) == n_rows else cols[top])
            tops.extend(np.concatenate([p[q] for p in parts]).astype(np.int64) for q in range(len(scores)))
        return tops

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_npy(folder / "vectors.npy", self._vectors)
        atomic_npy(folder / "alive.npy", self._alive)
        self.bm25.save(folder)
        if self.index is not None:
            self.index.save(folder)
        vocabulary, token_ids, offsets = _encode_tokens(self.tokens)
        atomic_npy(folder / "token_ids.npy", token_ids)
        atomic_npy(folder / "token_offsets.npy", offsets)
        meta = {
            "dim": self.dim,
            "ids": self.ids,
            "vocabulary": vocabulary,
            "langs": self.langs,
            "center_languages": self.center_languages,
            "index": self.index_params.__dict__,
        }
        atomic_text(folder / "collection.json", json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | Path) -> Collection:
        folder = Path(folder)
        meta = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
        self = cls.__new__(cls)
        self.dim = meta["dim"]
        self.center_languages = meta.get("center_languages", True)
        self.ids = meta["ids"]
        if "vocabulary" in meta:
            self.tokens = _decode_tokens(
                meta["vocabulary"],
                np.load(folder / "token_ids.npy", allow_pickle=False),
                np.load(folder / "token_offsets.npy", allow_pickle=False),
            )
        else:  # saved before the token arrays
            self.tokens = [interned(t) for t in meta["tokens"]]
        self._vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        if not (len(self.tokens) == len(self.ids) == len(self._vectors)):
            raise MatcherError(f"{folder}: damaged collection ({len(self.ids)} ids, {len(self.tokens)} token "
                               f"lists, {len(self._vectors)} vectors)")
        self._alive = np.load(folder / "alive.npy", allow_pickle=False)
        self.row_of = {rid: r for r, rid in enumerate(self.ids) if self._alive[r]}
        self.langs = meta.get("langs") or [""] * len(self.ids)
        self._lang_sum, self._lang_outer, self._lang_count = {}, {}, {}
        self._lang_cache = None
        self.version, self._journal, self._journal_floor = 0, [], 0
        alive = np.flatnonzero(self._alive)
        self._count_languages([self.langs[r] for r in alive], self._vectors[alive] if len(alive) < len(self._alive)
                              else self._vectors, +1)
        self.bm25 = BM25.load(folder)
        if "index" in meta:
            self.index_params = IndexParams(**meta["index"])
            self.index = VectorIndex.load(folder) if self.index_params.kind != "exact" else None
        else:  # saved when every kind had its FAISS index
            old = VectorIndex.load(folder)
            self.index_params = old.params
            self.index = old if old.params.kind != "exact" else None
        return self


def view_of_projections(counts: NDArray[np.float64], squares: NDArray[np.float64],
                        sums: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """`Collection.views_of` from `Collection.projections`: the same mean, covariance and
    shrinkage towards the pooled within-language covariance as `Collection.language_stats`."""
    n = counts[:, None]
    mean = sums / n
    var = squares / n - mean**2  # o' C_l o
    pooled = (n * var).sum(axis=0) / counts.sum()
    m = LANGUAGE_PRIOR_ROWS
    shrunk = (n * var + m * pooled) / (n + m)
    means = np.vstack([mean, sums.sum(axis=0) / counts.sum()])
    spreads = np.sqrt(np.maximum(np.vstack([shrunk, shrunk.mean(axis=0)]), 1e-8))
    return means, spreads


def interned(tokens: Sequence[str]) -> list[str]:
    # Tokenisers and json.loads make a new string object for every occurrence of a word:
    # one shared object per word keeps a 42k-text collection's token lists small.
    return [sys.intern(str(t)) for t in tokens]  # str(): numpy.str_ and other subclasses cannot be interned


def _encode_tokens(tokens: Sequence[Sequence[str]]) -> tuple[list[str], NDArray[np.int32], NDArray[np.int64]]:
    """(vocabulary, every token as a vocabulary number, where each text's numbers start):
    stored as JSON, a JSON list of lists makes a new string object per occurrence on load
    (281 MB for the 5.4 million tokens of 42k sbir-firms capabilities)."""
    vocabulary: dict[str, int] = {}
    number = vocabulary.setdefault
    offsets = np.cumsum([0, *map(len, tokens)], dtype=np.int64)
    # Straight into int32 (a list of 5.4 million Python ints first held about 190 MB).
    ids = np.fromiter((number(t, len(vocabulary)) for toks in tokens for t in toks), dtype=np.int32,
                      count=int(offsets[-1]))
    return list(vocabulary), ids, offsets


def _decode_tokens(vocabulary: list[str], ids: NDArray[np.int32], offsets: NDArray[np.int64]) -> list[list[str]]:
    words = [sys.intern(w) for w in vocabulary]
    flat = np.array(words, dtype=object)[ids].tolist() if len(ids) else []  # references, not copies
    bounds = offsets.tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _values_at(
    rows_sorted: NDArray[np.int64], values: NDArray[np.float32], rows: NDArray[np.int64]
) -> NDArray[np.float32]:
    """values[i] where rows_sorted[i] is in `rows`, else 0, in the order of `rows`."""
    if not len(rows_sorted) or not len(rows):
        return np.zeros(len(rows), dtype=np.float32)
    pos = np.minimum(np.searchsorted(rows_sorted, rows), len(rows_sorted) - 1)
    return np.where(rows_sorted[pos] == rows, values[pos], 0.0).astype(np.float32)
