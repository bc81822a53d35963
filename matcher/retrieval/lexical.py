"""BM25 lexical scoring, estimator-style, over sparse matrices.

`fit` learns the vocabulary, document frequencies and the saturated term weights; `score`
returns a (n_queries, n_docs) float32 matrix. Documents can be appended after fitting
(`partial_add`) without refitting: idf follows the live document frequencies, while the
length normalisation keeps the average length learned at fit time (it moves very little as a
corpus grows, and keeping it fixed means old rows never need recomputing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.errors import NotFittedError
from matcher.fsutil import atomic_npy, atomic_text
from matcher.retrieval.text import Tokenizer

DENSE_QUERIES = 8  # `score_rows` accumulates postings for up to this many queries...
DENSE_ROW_SHARE = 16  # ...when they ask for at least 1/16 of the documents
ADD_BLOCK = 4096  # documents turned into term weights at a time


class BM25:
    """Okapi BM25 (Lucene's idf variant: log(1 + (N - df + 0.5) / (df + 0.5)))."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] | None = None):
        self.k1 = k1
        self.b = b
        self.tokenizer = tokenizer

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> BM25:
        """Learn from raw texts with `tokenizer` (default: the CJK-aware `Tokenizer`)."""
        return self.fit_tokens(self._tokenize(texts))

    def fit_tokens(self, docs: Sequence[Sequence[str]]) -> BM25:
        self.vocabulary_: dict[str, int] = {}
        lengths = np.fromiter((len(d) for d in docs), dtype=np.float64, count=len(docs))
        self.avgdl_ = float(lengths.mean()) if len(docs) and lengths.sum() else 1.0
        self.doc_freq_ = np.zeros(0, dtype=np.int64)
        self.n_docs_ = 0
        self.weights_ = sp.csr_matrix((0, 0), dtype=np.float32)
        self.partial_add(docs)
        return self

    def partial_add(self, docs: Sequence[Sequence[str]]) -> None:
        """Append documents (as token lists) after the existing rows."""
        vocab = self.vocabulary_
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        # int32 numbers (scipy's CSR indices are int32 below 2**31 anyway): at 42k texts the
        # int64 (row, term) pairs of every token occurrence were 86 MB of a start-up's peak.
        index = np.int32 if max(len(vocab) + int(lengths.sum()), len(docs)) < 2**31 else np.int64
        # A block of documents at a time: the (row, term) pair of every token occurrence and
        # scipy's copies of them while it sums duplicates lived at once for a whole corpus, about
        # 200 MB of a first start's peak at 42k capabilities; a block's are a few MB.
        blocks = [
            self._term_weights_block(docs[start : start + ADD_BLOCK], lengths[start : start + ADD_BLOCK], index)
            for start in range(0, len(docs), ADD_BLOCK)
        ]
        n_new, n_terms = len(docs), len(vocab)
        added = _stack_rows(blocks, n_terms, index) if blocks else sp.csr_matrix((0, n_terms), dtype=np.float32)
        del blocks
        old = self.weights_
        if old.shape[1] < n_terms:
            old = sp.csr_matrix((old.data, old.indices, old.indptr), shape=(old.shape[0], n_terms))
        self.weights_ = sp.vstack([old, added], format="csr") if old.shape[0] else added
        df = np.bincount(added.indices, minlength=n_terms)
        self.doc_freq_ = np.pad(self.doc_freq_, (0, n_terms - len(self.doc_freq_))) + df
        self.n_docs_ += n_new
        self._weights_t = None
        self._idf = None

    def _term_weights_block(self, docs: Sequence[Sequence[str]], lengths: NDArray[np.int64], index) -> sp.csr_matrix:
        """The saturated term weights of some documents, one row each, in CSR over the terms
        known so far (adding the new ones to the vocabulary)."""
        vocab = self.vocabulary_
        term_ids = np.fromiter(
            (vocab.setdefault(tok, len(vocab)) for tokens in docs for tok in tokens),
            dtype=index,
            count=int(lengths.sum()),
        )
        # COO -> CSR sums the repeated (row, term) pairs: the term frequencies.
        rows = np.repeat(np.arange(len(docs), dtype=index), lengths)
        tf = sp.csr_matrix((np.ones(len(term_ids), dtype=np.float32), (rows, term_ids)), shape=(len(docs), len(vocab)))
        tf.sum_duplicates()
        norm = self.k1 * (1 - self.b + self.b * lengths / self.avgdl_)
        counts = tf.data.astype(np.float64)
        tf.data = (counts * (self.k1 + 1) / (counts + np.repeat(norm, np.diff(tf.indptr)))).astype(np.float32)
        return tf

    def forget_rows(self, rows: NDArray[np.int64]) -> None:
        """Remove these rows from the document frequencies (the caller masks them from results)."""
        self._check_fitted()
        if len(rows) == 0:
            return
        sub = self.weights_[np.asarray(rows)]
        self.doc_freq_ = self.doc_freq_ - np.bincount(sub.indices, minlength=len(self.doc_freq_))
        self.n_docs_ -= len(rows)
        # The rows stay (row numbers are ids elsewhere) but score zero from now on.
        self.weights_ = sp.csr_matrix(self.weights_)
        keep = np.ones(self.weights_.shape[0], dtype=np.float32)
        keep[np.asarray(rows)] = 0.0
        self.weights_ = sp.diags(keep).dot(self.weights_).tocsr()
        self.weights_.eliminate_zeros()
        self._weights_t = None
        self._idf = None

    # -- scoring ---------------------------------------------------------------------------
    def idf(self) -> NDArray[np.float32]:
        """(n_terms,) float32 inverse document frequencies."""
        self._check_fitted()
        if getattr(self, "_idf", None) is None:  # computed once per change of the document frequencies
            n, df = max(self.n_docs_, 1), self.doc_freq_
            self._idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
            self._idf.flags.writeable = False
        return self._idf

    def query_matrix(self, queries: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """(n_queries, n_terms) idf-weighted query term counts; unknown terms are dropped."""
        self._check_fitted()
        idf = self.idf()
        rows, cols, vals = [], [], []
        for r, tokens in enumerate(queries):
            for tok in tokens:
                j = self.vocabulary_.get(tok)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
                    vals.append(idf[j])
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(queries), len(self.vocabulary_)),
        )

    def score_tokens(
        self, queries: Sequence[Sequence[str]], query_matrix: sp.csr_matrix | None = None
    ) -> sp.csr_matrix:
        """(n_queries, n_docs) sparse float32 BM25 scores; absent entries are 0.

        query_matrix: `query_matrix(queries)` when the caller already has it."""
        q = self.query_matrix(queries) if query_matrix is None else query_matrix
        return (q @ self._postings()).tocsr()

    def score_dense(self, query_matrix: sp.csr_matrix) -> NDArray[np.float32]:
        """(n_queries, n_docs) dense float32 BM25 scores from `query_matrix(queries)`.

        For a few queries this is cheaper than `score_tokens`: it reads only the query terms'
        postings and accumulates them, instead of a sparse product that sorts its output.

        The result is read-only: the last one is kept, because a request asks for the same
        query's scores twice (its candidates, then its partners' other capabilities)."""
        self._check_fitted()
        postings_all = self._postings()
        last = getattr(self, "_last_dense", None)
        if last is not None and last[0] is query_matrix and last[1] is postings_all:
            return last[2]
        out = np.zeros((query_matrix.shape[0], self.weights_.shape[0]), dtype=np.float32)
        for i in range(query_matrix.shape[0]):
            start, end = query_matrix.indptr[i], query_matrix.indptr[i + 1]
            if end > start:
                postings = postings_all[query_matrix.indices[start:end]]
                out[i] = postings.T @ query_matrix.data[start:end]
        out.flags.writeable = False
        self._last_dense = (query_matrix, postings_all, out)
        return out

    def score_rows(self, query_matrix: sp.csr_matrix, rows: NDArray[np.int64]) -> NDArray[np.float32]:
        """(n_queries, len(rows)) dense float32 BM25 scores of these document rows only."""
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        if query_matrix.shape[0] <= DENSE_QUERIES and len(rows) * DENSE_ROW_SHARE >= self.weights_.shape[0]:
            # Reading the query terms' postings beats slicing thousands of document rows, and
            # sums each score over the same terms in the same (ascending) order: equal bits.
            return self.score_dense(query_matrix)[:, rows]
        sub = self.weights_[rows]
        return np.asarray((query_matrix @ sub.T).todense(), dtype=np.float32).reshape(query_matrix.shape[0], len(rows))

    def document_weights(self, tokens: Sequence[str]) -> sp.csr_matrix:
        """(1, n_terms) saturated term weights of a text that is not in the index, as if it were
        one more document (terms the vocabulary does not know are dropped: no query can match them)."""
        self._check_fitted()
        counts: dict[int, int] = {}
        for tok in tokens:
            j = self.vocabulary_.get(tok)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avgdl_)
        cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        data = (tf * (self.k1 + 1) / (tf + norm)).astype(np.float32)
        return sp.csr_matrix((data, (np.zeros(len(cols), np.int64), cols)), shape=(1, len(self.vocabulary_)))

    def score(self, queries: Sequence[str]) -> sp.csr_matrix:
        return self.score_tokens(self._tokenize(queries))

    def max_scores(
        self, queries: Sequence[Sequence[str]], query_matrix: sp.csr_matrix | None = None
    ) -> NDArray[np.float32]:
        """(n_queries,) the score a document would get by containing every query term with
        saturated frequency: the scale used to normalise lexical scores to 0..1."""
        q = self.query_matrix(queries) if query_matrix is None else query_matrix
        return np.asarray(q.sum(axis=1)).ravel().astype(np.float32) * (self.k1 + 1)

    def coverage(self, queries: Sequence[Sequence[str]]) -> NDArray[np.float32]:
        """(n_queries,) share of query tokens that the corpus vocabulary knows (0..1).

        Near 0 means lexical evidence cannot help (e.g. a Chinese query over English texts)."""
        self._check_fitted()
        out = np.zeros(len(queries), dtype=np.float32)
        for i, tokens in enumerate(queries):
            if tokens:
                ids = [self.vocabulary_.get(t) for t in tokens]
                known = sum(1 for j in ids if j is not None and self.doc_freq_[j] > 0)
                out[i] = known / len(tokens)
        return out

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """JSON parameters and vocabulary plus .npy arrays; loadable with allow_pickle=False."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        w = self.weights_
        arrays = {"data": w.data, "indices": w.indices, "indptr": w.indptr, "doc_freq": self.doc_freq_}
        for name, arr in arrays.items():
            atomic_npy(folder / f"bm25_{name}.npy", arr)
        meta = {
            "k1": self.k1,
            "b": self.b,
            "avgdl": self.avgdl_,
            "n_docs": self.n_docs_,
            "shape": list(w.shape),
            "vocabulary": list(self.vocabulary_),
        }
        atomic_text(folder / "bm25.json", json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | Path, tokenizer: Callable[[str], list[str]] | None = None) -> BM25:
        folder = Path(folder)
        meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
        arr = {
            n: np.load(folder / f"bm25_{n}.npy", allow_pickle=False) for n in ("data", "indices", "indptr", "doc_freq")
        }
        self = cls(k1=meta["k1"], b=meta["b"], tokenizer=tokenizer)
        self.vocabulary_ = {t: i for i, t in enumerate(meta["vocabulary"])}
        self.avgdl_ = meta["avgdl"]
        self.n_docs_ = meta["n_docs"]
        self.doc_freq_ = arr["doc_freq"]
        self.weights_ = sp.csr_matrix((arr["data"], arr["indices"], arr["indptr"]), shape=tuple(meta["shape"]))
        self._weights_t = None
        self._idf = None
        return self

    def prepare(self) -> None:
        """Build the term-major postings now rather than at the first query."""
        self._check_fitted()
        self._postings()

    # -- helpers ---------------------------------------------------------------------------
    def _postings(self) -> sp.csr_matrix:
        """(n_terms, n_docs) term-major weights, built once per change of the documents."""
        if self._weights_t is None:
            self._weights_t = self.weights_.T.tocsr()
        return self._weights_t

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        tok = self.tokenizer or Tokenizer()
        return [tok(t) for t in texts]

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError("BM25 is not fitted: call fit() or fit_tokens() first")


def _stack_rows(blocks: list[sp.csr_matrix], n_terms: int, index) -> sp.csr_matrix:
    """CSR blocks of consecutive rows (each over the terms known when it was made) as one
    matrix over `n_terms` columns; the same arrays `sp.vstack` would give, built directly."""
    row_nnz = np.concatenate([np.diff(b.indptr) for b in blocks])
    indptr = np.zeros(len(row_nnz) + 1, dtype=index)
    np.cumsum(row_nnz, out=indptr[1:])
    data = np.concatenate([b.data for b in blocks])
    indices = np.concatenate([b.indices.astype(index, copy=False) for b in blocks])
    return sp.csr_matrix((data, indices, indptr), shape=(len(row_nnz), n_terms))

