"""Finding and scoring: the search engine behind every match.

Owns tokenising (:mod:`.text`), BM25 (:mod:`.lexical`), the encoders and their offline model
builds and embedding cache (:mod:`.encoders`, :mod:`.e5build`, :mod:`.cache`; the registered
models run on :mod:`.plain_model` with :mod:`.transformer` and, for e5, :mod:`.unigram`), vector indexes
(:mod:`.index`), one searchable collection (:mod:`.collection`), fusion and partner aggregation
(:mod:`.rank`), the calibrated fit (:mod:`.calibration`) and reasons in words (:mod:`.reasons`),
the :class:`MatchEngine` in both directions (:mod:`.engine`) and its result types
(:mod:`.results`). torch, transformers, sentence-transformers and faiss are imported lazily, inside
the functions that need them, so importing this package stays cheap.

May import: the top-level base modules only (records, errors, fsutil, settings). Not
:mod:`matcher.io`: callers read files and hand records in.
"""

from matcher.retrieval.encoders import (
    DEFAULT_MODEL,
    CachedEncoder,
    Encoder,
    FakeEncoder,
    load_encoder,
    model_path,
    open_encoder,
    prepare_model,
)
from matcher.retrieval.engine import (
    EngineParams,
    Filters,
    MatchEngine,
)
from matcher.retrieval.index import (
    IndexParams,
)
from matcher.retrieval.results import (
    CapabilityHit,
    DemandHit,
    PartnerMatch,
    ScoreParts,
)
from matcher.retrieval.text import (
    Tokenizer,
    guess_language,
)

__all__ = [
    "CachedEncoder",
    "CapabilityHit",
    "DEFAULT_MODEL",
    "DemandHit",
    "Encoder",
    "EngineParams",
    "FakeEncoder",
    "Filters",
    "IndexParams",
    "MatchEngine",
    "PartnerMatch",
    "ScoreParts",
    "Tokenizer",
    "guess_language",
    "load_encoder",
    "model_path",
    "open_encoder",
    "prepare_model",
]
