"""``--ray ADDRESS`` for the batch commands (rank, conference, landscape, index).

Everything Ray-specific in the command line is here: the options, the encoder and ranker they
select, and the conference's ranking stage. Without ``--ray`` each helper returns the
single-machine object, so the commands' code paths stay the same. Ray itself is imported only
when ``--ray`` is given (:mod:`matcher.distributed`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_ray_arguments(sp: argparse.ArgumentParser) -> None:
    group = sp.add_argument_group("cluster (optional extra: pip install 'techmatch[ray]')")
    group.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the batch work on Ray: 'local' (start one here), 'auto' (the cluster `ray start` made) "
        "or 'ray://host:port'",
    )
    group.add_argument("--ray-workers", type=int, metavar="N", help="model replicas, one CPU each (default: all CPUs)")
    group.add_argument(
        "--ray-cache",
        type=Path,
        metavar="DIR",
        help="embedding cache folder that every node mounts (default: $TECHMATCH_HOME/embeddings-shared)",
    )
    group.add_argument("--ray-batch", type=int, default=256, metavar="N", help="texts per Ray batch (%(default)s)")


def ray_config(args: argparse.Namespace):
    """The RayConfig asked for, or None without --ray. Fails at once if Ray is missing."""
    if not getattr(args, "ray", None):
        return None
    from matcher.distributed import RayConfig, require_ray

    require_ray()
    cache = args.ray_cache.expanduser().resolve() if args.ray_cache else None
    return RayConfig(args.ray, workers=args.ray_workers, cache_folder=cache, batch_size=args.ray_batch)


def encoder_for(args: argparse.Namespace, model: str, *, max_seq_length: int | None = None):
    """``open_encoder(model)``, or with --ray an encoder whose big batches run on the cluster."""
    config = ray_config(args)
    if config is None:
        from matcher.retrieval.encoders import open_encoder

        return open_encoder(model, max_seq_length=max_seq_length)
    from matcher.distributed import ModelRecipe, RayEncoder

    return RayEncoder(ModelRecipe(model, max_seq_length=max_seq_length), config)


def ranker_for(args: argparse.Namespace, model: str):
    """The function that ranks all demands for ``techmatch rank`` (see matcher.batch.rank_files)."""
    config = ray_config(args)
    if config is None:
        from matcher.batch import rank_demands

        return rank_demands
    from matcher.distributed import ModelRecipe, rank_on_ray

    def rank(engine, demands, *, level, k, progress=None):
        return rank_on_ray(
            engine, demands, level=level, k=k, make_encoder=ModelRecipe(model), config=config, progress=progress
        )

    return rank


def conference_ranking(args: argparse.Namespace, engine, demands, checkpoint: Path, progress):
    """The conference's ranking stage: ``rank_batch`` here, or the same on Ray with --ray
    (both read and append the same checkpoint, so ``--resume`` works across the two)."""
    from matcher.conference.run import rank_batch

    config = ray_config(args)
    if config is None:
        warm = getattr(engine, "encode_demand_queries", None)  # a stand-in ranker may have none
        if warm is not None:
            warm(demands)
        return rank_batch(engine.rank_batch_fn(), demands, args.k, checkpoint, progress, chunk_size=args.chunk_size)
    from matcher.distributed import ModelRecipe, rank_batch_on_ray

    return rank_batch_on_ray(
        engine.engine, demands, args.k, checkpoint, progress, make_encoder=ModelRecipe(args.model), config=config,
        chunk=args.chunk_size,
    )
