"""Where the batch work runs: the Ray address, the number of workers, the shared cache folder.

Ray is an optional extra (``pip install 'techmatch[ray]'``); it is imported here, lazily, and
nowhere at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import MatcherError

INSTALL_HINT = "install techmatch[ray] to use --ray (pip install 'techmatch[ray]')"
# Environment the workers need on every node: models load offline, tokenizers stay single-threaded.
WORKER_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "TECHMATCH_HOME", "TECHMATCH_BF16")


class RayUnavailableError(MatcherError):
    """--ray was asked for, but Ray is not installed (or the cluster cannot be reached)."""


@dataclass(frozen=True)
class RayConfig:
    """How to run on Ray.

    address: ``local`` (start a cluster in this process), ``auto`` (join the cluster that
    ``ray start`` made on this machine) or ``ray://host:port`` (Ray Client to a remote head).
    workers: model replicas (actors), sharing the cluster's CPUs equally; None: one per CPU.
    cache_folder: the shared embedding cache, a folder every node mounts; None:
    ``$TECHMATCH_HOME/embeddings-shared`` on each node (shared only on one machine).
    batch_size: texts (or demands) per Ray Data batch."""

    address: str = "local"
    workers: int | None = None
    cache_folder: Path | None = None
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.address not in ("local", "auto") and not self.address.startswith("ray://"):
            raise MatcherError(f"--ray expects 'local', 'auto' or 'ray://host:port', got '{self.address}'")
        if self.workers is not None and self.workers < 1:
            raise MatcherError(f"workers must be at least 1, got {self.workers}")
        if self.batch_size < 1:
            raise MatcherError(f"batch_size must be at least 1, got {self.batch_size}")


def require_ray():
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailableError(INSTALL_HINT) from exc
    return ray


def connect(config: RayConfig):
    """Join (or start) the cluster once per process; returns the ``ray`` module.

    An already initialised Ray (a test session, a notebook) is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        _quiet_data()
        return ray
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    kwargs = {"include_dashboard": False, "log_to_driver": True, "logging_level": "warning"}
    try:
        if config.address == "local":
            cpus = max(config.workers or 0, os.cpu_count() or 1)
            ray.init(num_cpus=cpus, runtime_env={"env_vars": env}, **kwargs)
        else:
            ray.init(address=config.address, runtime_env={"env_vars": env}, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot reach the Ray cluster at '{config.address}': {exc}") from exc
    _quiet_data()
    return ray


def worker_count(config: RayConfig) -> int:
    """Actors to start: as asked, else one per CPU the cluster offers (at least 1)."""
    if config.workers:
        return config.workers
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cpus_per_worker(actors: int) -> int:
    """CPUs each of ``actors`` actors asks for: an equal share of the cluster's (at least 1).
    Ray sets each actor's OMP_NUM_THREADS to it, so torch and BLAS use that many threads."""
    ray = require_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, actors))


def _quiet_data() -> None:
    """No Ray Data progress bars: the command line prints its own progress."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
