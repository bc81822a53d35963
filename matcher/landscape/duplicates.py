"""Near-duplicate demands and the staff's decisions on them.

Detection compares embeddings (above the corpus baseline) and token sets; the decisions (merge,
link) are kept in :class:`DemandLinks`, saved as JSON.

    groups = near_duplicates(vectors, tokens, ids=ids)          # "duplicate" / "related" groups
    links = DemandLinks.load(path)                               # merges and links, saved as JSON
    links.merge([a, b], primary=a.id); links.link(a.id, c.id); links.save(path)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFoundError
from matcher.landscape.clusters import normalise_rows
from matcher.records import Demand, from_dict, to_dict


@dataclass(frozen=True)
class DuplicateParams:
    """Thresholds for near-duplicate demands (chosen on hand-made cases, docs/landscape.md).

    The cosine is taken above the corpus baseline: excess = (cos - b) / (1 - b), b the median
    cosine between the demands (0 for fewer than 5), so the same numbers hold for an encoder
    whose cosines all sit near 0.88 (e5) and for one whose unrelated texts sit near 0 (fake).
    The token Jaccard is the second, lexical signal.

    duplicate: excess >= duplicate_excess and Jaccard >= duplicate_jaccard (the same text
    re-filed), or excess >= duplicate_excess_alone (the same text reworded or translated).
    related: excess >= related_excess (the same problem in other words), or excess >=
    related_floor and Jaccard >= related_jaccard (many shared terms, some semantic support)."""

    duplicate_excess: float = 0.85
    duplicate_jaccard: float = 0.5
    duplicate_excess_alone: float = 0.95
    related_excess: float = 0.55
    related_jaccard: float = 0.3
    related_floor: float = 0.3
    baseline: float | None = None  # None: the median pairwise cosine


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    cosine: float
    excess: float
    jaccard: float
    label: str  # "duplicate" or "related"


@dataclass(frozen=True)
class DuplicateGroup:
    """Demands connected by duplicate or related pairs. label "duplicate" when the duplicate
    pairs alone connect all of them, else "related"."""

    ids: tuple[str, ...]
    label: str
    pairs: tuple[DuplicatePair, ...]


def near_duplicates(
    vectors: NDArray[np.float32],
    tokens: Sequence[Sequence[str]],
    *,
    ids: Sequence[str] | None = None,
    params: DuplicateParams | None = None,
    block: int = 1024,
) -> list[DuplicateGroup]:
    """Near-duplicate and related demands, grouped (connected components), largest first.

    vectors: (n, dim) embeddings; tokens: n token lists (sets are compared)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    p = params or DuplicateParams()
    x = normalise_rows(np.asarray(vectors, dtype=np.float32))
    n = len(x)
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    if len(tokens) != n or len(ids) != n:
        raise MatcherError("vectors, tokens and ids must have the same length")
    if n < 2:
        return []
    base = p.baseline if p.baseline is not None else _baseline(x)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, toks in enumerate(tokens):
        for t in set(toks):
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    bag = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, max(len(vocab), 1)))
    sizes = np.asarray(bag.sum(axis=1)).ravel()
    pairs: list[DuplicatePair] = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        cos = x[start:stop] @ x.T
        inter = (bag[start:stop] @ bag.T).toarray()
        union = sizes[start:stop, None] + sizes[None, :] - inter
        jac = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        excess = (cos - base) / max(1 - base, 1e-6)
        hit = (excess >= p.related_excess) | ((excess >= p.related_floor) & (jac >= p.related_jaccard))
        hit |= excess >= p.duplicate_excess_alone
        hit |= (excess >= p.duplicate_excess) & (jac >= p.duplicate_jaccard)
        for i, j in zip(*np.nonzero(hit)):
            a, b = start + int(i), int(j)
            if b <= a:
                continue
            e, jj = float(excess[i, j]), float(jac[i, j])
            dup = e >= p.duplicate_excess_alone or (e >= p.duplicate_excess and jj >= p.duplicate_jaccard)
            pairs.append(DuplicatePair(ids[a], ids[b], float(cos[i, j]), e, jj, "duplicate" if dup else "related"))
    if not pairs:
        return []
    pos = {d: i for i, d in enumerate(ids)}

    def components(selected: list[DuplicatePair]) -> NDArray[np.int32]:
        r = [pos[q.a] for q in selected]
        c = [pos[q.b] for q in selected]
        g = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
        return connected_components(g, directed=False)[1]

    comp_all = components(pairs)
    comp_dup = components([q for q in pairs if q.label == "duplicate"])
    groups = []
    for c in np.unique(comp_all[[pos[q.a] for q in pairs]]):
        members = np.flatnonzero(comp_all == c)
        gpairs = tuple(sorted((q for q in pairs if comp_all[pos[q.a]] == c), key=lambda q: (-q.cosine, q.a, q.b)))
        label = (
            "duplicate"
            if len(set(comp_dup[members])) == 1 and any(q.label == "duplicate" for q in gpairs)
            else "related"
        )
        groups.append(DuplicateGroup(tuple(ids[i] for i in members), label, gpairs))
    return sorted(groups, key=lambda g: (g.label != "duplicate", -len(g.ids), -g.pairs[0].cosine, g.ids))


def _baseline(x: NDArray[np.float32], sample: int = 2000, seed: int = 0) -> float:
    """The median cosine between distinct demands (on a sample when there are many)."""
    n = len(x)
    if n < 5:
        return 0.0
    if n > sample:
        x = x[np.random.default_rng(seed).choice(n, sample, replace=False)]
        n = sample
    cos = x @ x.T
    return float(np.median(cos[np.triu_indices(n, 1)]))


# -- staff decisions: merge and link ----------------------------------------------------------
@dataclass(frozen=True)
class MergedDemand:
    """Several demands handled as one. Every original record is kept unchanged."""

    id: str
    primary_id: str
    originals: tuple[Demand, ...]
    note: str = ""
    created: str = ""

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.originals)

    def as_demand(self) -> Demand:
        """One demand for matching: the primary's text, the other texts appended when they
        add anything, and the enterprises and regions of all members in `extra`."""
        primary = next(d for d in self.originals if d.id == self.primary_id)
        texts = [primary.text] + [d.text for d in self.originals if d.id != self.primary_id and d.text != primary.text]
        return Demand(
            id=self.id,
            title=primary.title,
            text="\n".join(t for t in texts if t),
            industry=primary.industry,
            region=primary.region,
            enterprise=primary.enterprise,
            confidential=any(d.confidential for d in self.originals),
            language=primary.language,
            extra={
                "merged_from": ",".join(self.member_ids),
                "enterprises": ";".join(dict.fromkeys(d.enterprise for d in self.originals if d.enterprise)),
                "regions": ";".join(dict.fromkeys(d.region for d in self.originals if d.region)),
            },
        )


@dataclass(frozen=True)
class DemandLink:
    """Two demands staff marked as related (they stay separate)."""

    a: str
    b: str
    note: str = ""
    created: str = ""


@dataclass
class DemandLinks:
    """Staff decisions on near-duplicates: merges and links, saved as JSON.

    A demand belongs to at most one merge; links are unordered pairs."""

    merges: dict[str, MergedDemand] = field(default_factory=dict)
    links: dict[tuple[str, str], DemandLink] = field(default_factory=dict)

    def merge(self, group: Sequence[Demand], *, primary: str | None = None, note: str = "") -> MergedDemand:
        """Merge two or more demands; `primary` (default: the first) gives title and text."""
        ids = [d.id for d in group]
        if len(set(ids)) < 2 or len(set(ids)) != len(ids):
            raise MatcherError("a merge needs two or more distinct demands")
        for did in ids:
            if (m := self.merge_of(did)) is not None:
                raise MatcherError(f"demand '{did}' is already in merge '{m.id}'; unmerge it first")
        primary = primary or ids[0]
        if primary not in ids:
            raise NotFoundError(f"primary '{primary}' is not one of the merged demands")
        merged = MergedDemand(f"merge:{primary}", primary, tuple(group), note, _now())
        self.merges[merged.id] = merged
        return merged

    def unmerge(self, merge_id: str) -> MergedDemand:
        try:
            return self.merges.pop(merge_id)
        except KeyError:
            raise NotFoundError(f"no merge '{merge_id}'") from None

    def merge_of(self, demand_id: str) -> MergedDemand | None:
        return next((m for m in self.merges.values() if demand_id in m.member_ids), None)

    def link(self, a: str, b: str, *, note: str = "") -> DemandLink:
        if a == b:
            raise MatcherError("cannot link a demand to itself")
        key = tuple(sorted((a, b)))
        link = DemandLink(key[0], key[1], note, _now())
        self.links[key] = link
        return link

    def unlink(self, a: str, b: str) -> None:
        if self.links.pop(tuple(sorted((a, b))), None) is None:
            raise NotFoundError(f"no link between '{a}' and '{b}'")

    def linked(self, demand_id: str) -> list[str]:
        return sorted({x for k in self.links for x in k if demand_id in k} - {demand_id})

    # -- persistence
    def to_json(self) -> str:
        data = {
            "version": 1,
            "merges": [
                {
                    "id": m.id,
                    "primary_id": m.primary_id,
                    "note": m.note,
                    "created": m.created,
                    "originals": [to_dict(d) for d in m.originals],
                }
                for m in self.merges.values()
            ],
            "links": [{"a": k.a, "b": k.b, "note": k.note, "created": k.created} for k in self.links.values()],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DemandLinks:
        try:
            data = json.loads(text)
            out = cls()
            for m in data.get("merges", []):
                originals = tuple(from_dict("demands", d) for d in m["originals"])
                out.merges[m["id"]] = MergedDemand(
                    m["id"], m["primary_id"], originals, m.get("note", ""), m.get("created", "")
                )
            for k in data.get("links", []):
                out.links[tuple(sorted((k["a"], k["b"])))] = DemandLink(
                    k["a"], k["b"], k.get("note", ""), k.get("created", "")
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise MatcherError(f"invalid demand links JSON: {exc}") from None
        return out

    def save(self, path: str | Path) -> None:
        from matcher.fsutil import atomic_text

        atomic_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> DemandLinks:
        path = Path(path)
        if not path.exists():
            return cls()
        return cls.from_json(path.read_text(encoding="utf-8"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
