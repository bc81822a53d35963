"""The Ray backend for batch work: same inputs, same outputs as the single-machine path.

Owns running the heavy batch stages on a Ray cluster (``--ray local|auto|ray://host:port``):
encoding texts with Ray Data actors that load the model once (:mod:`.embed`, whose
:class:`RayEncoder` plugs in wherever an encoder goes: ``techmatch index``, ``landscape``,
``rank``, ``conference``), ranking demands against a capability index shipped through the
object store (:mod:`.rank`, including the conference's resumable checkpoint), the embedding
cache in a folder all nodes share (:mod:`.store`) and connecting to the cluster (:mod:`.cluster`).
Workers call the same engine functions the plain path calls, so results are identical.

Ray is optional (``pip install 'techmatch[ray]'``): nothing here imports it at import time, and
asking for it without it installed raises "install techmatch[ray] to use --ray".

May import: the base modules, :mod:`matcher.io`, :mod:`matcher.retrieval`,
:mod:`matcher.conference`, :mod:`matcher.landscape`.
"""

from matcher.distributed.cluster import INSTALL_HINT, RayConfig, RayUnavailableError, require_ray
from matcher.distributed.embed import EmbedStats, EmbedWorker, ModelRecipe, RayEncoder, embed_on_ray
from matcher.distributed.rank import RankWorker, rank_batch_on_ray, rank_chunk, rank_on_ray
from matcher.distributed.store import FolderEmbeddingCache

__all__ = [
    "INSTALL_HINT",
    "EmbedStats",
    "EmbedWorker",
    "FolderEmbeddingCache",
    "ModelRecipe",
    "RankWorker",
    "RayConfig",
    "RayEncoder",
    "RayUnavailableError",
    "embed_on_ray",
    "rank_batch_on_ray",
    "rank_chunk",
    "rank_on_ray",
    "require_ray",
]
