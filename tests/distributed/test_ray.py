"""The --ray path on a local Ray cluster: same results as one machine, the shared cache, a worker
killed mid-run, a stopped conference ranking resumed. Fake encoder, demo corpus (297
capabilities, 166 demands), small batches so the work really is split."""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from corpora import demo_corpus_path
from matcher.batch import rank_demands
from matcher.conference.run import rank_batch
from matcher.io import load_task
from matcher.retrieval.cache import EmbeddingCache
from matcher.retrieval.encoders import CachedEncoder, FakeEncoder
from matcher.retrieval.engine import MatchEngine

pytestmark = pytest.mark.usefixtures("ray_cluster")
ray = pytest.importorskip("ray")

from matcher.distributed import (  # noqa: E402
    EmbedWorker,
    ModelRecipe,
    RayConfig,
    RayEncoder,
    embed_on_ray,
    rank_batch_on_ray,
    rank_on_ray,
)

# The classes below travel to the workers by value: they cannot import this test module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def corpus():
    task = load_task(demo_corpus_path())
    return task.capabilities, task.demands


def _config(tmp_path: Path, batch: int = 32) -> RayConfig:
    return RayConfig("local", workers=2, cache_folder=tmp_path / "shared-cache", batch_size=batch)


def _assert_same_ranking(plain, other):
    assert len(plain) == len(other)
    for p, o in zip(plain, other):
        assert [r[0] for r in p] == [r[0] for r in o]
        for column in range(1, len(p[0]) if p else 1):  # the score, and the fit where ranked with one
            np.testing.assert_allclose([r[column] for r in p], [r[column] for r in o], rtol=1e-6, atol=1e-7)


def test_rank_on_ray_gives_the_single_machine_ranking(corpus, tmp_path):
    caps, demands = corpus
    config = _config(tmp_path)
    plain = MatchEngine(FakeEncoder()).fit(caps)
    remote = MatchEngine(RayEncoder(ModelRecipe("fake"), config)).fit(caps)
    assert remote.encoder.stats.texts == len(caps) and len(remote.encoder.stats.batches) > 2
    np.testing.assert_array_equal(remote._caps.vectors, plain._caps.vectors)
    for level in ("capability",):  # partner level: the command-line test below
        want = rank_demands(plain, demands, level=level, k=10)
        done = []
        got = rank_on_ray(
            remote, demands, level=level, k=10, make_encoder=ModelRecipe("fake"), config=config, progress=done.append
        )
        assert sum(done) == len(demands)
        _assert_same_ranking(want, got)


class BatchSensitive(FakeEncoder):
    """A vector whose last bits depend on its batch neighbours, as a real model's do in
    bfloat16 (padding to the longest text, matrix shapes): the same texts in other batches give
    other vectors, so only batches cut exactly as on the plain path give the same ones."""

    batch_size = 8

    def embed_batch(self, texts):
        out = super().embed_batch(texts)
        out[:, 1] += 1e-3 * (len(texts) + max(map(len, texts)) % 7)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class SensitiveRecipe:
    batch_size = BatchSensitive.batch_size

    def __call__(self):
        return BatchSensitive()


def _plain_sensitive(tmp_path: Path) -> CachedEncoder:
    return CachedEncoder(BatchSensitive(), EmbeddingCache(tmp_path / "plain-cache.sqlite"))


def test_batch_dependent_vectors_are_the_same_on_ray_as_on_one_machine(corpus, tmp_path):
    caps, _ = corpus
    texts = [c.full_text for c in caps]
    texts = texts + texts[5:25]  # repeated texts are encoded once, in their first place
    want = _plain_sensitive(tmp_path).encode_documents(texts)
    assert not np.array_equal(BatchSensitive().encode_documents(texts[::-1])[::-1], want), (
        "the encoder does not depend on its batches: the test would test nothing"
    )
    # 20 texts a chunk is not a whole number of 8-text batches: chunks are rounded up to 24
    got, stats = embed_on_ray(texts, "passage", SensitiveRecipe(), BatchSensitive().dim, _config(tmp_path, batch=20))
    assert len(stats.batches) > 2
    np.testing.assert_array_equal(got, want)


def test_queries_encoded_per_call_rank_the_same_on_ray(corpus, tmp_path):
    caps, demands = corpus
    # 600 demands, each text four times: ranked 256 at a time, on Ray by two workers at once
    many = [replace(d, id=f"{d.id}-{n}") for n in range(4) for d in demands][:600]
    want = rank_demands(MatchEngine(_plain_sensitive(tmp_path)).fit(caps), many, level="partner", k=5)
    config = _config(tmp_path, batch=100)
    remote = MatchEngine(RayEncoder(SensitiveRecipe(), config)).fit(caps)
    got = rank_on_ray(remote, many, level="partner", k=5, make_encoder=SensitiveRecipe(), config=config)
    _assert_same_ranking(want, got)


def test_rank_command_with_ray_writes_the_same_file(corpus, tmp_path, capsys):
    from matcher.cli.commands import main

    task = demo_corpus_path()
    common = ["rank", "--demands", str(task / "demands.jsonl"), "--capabilities", str(task / "capabilities.jsonl")]
    common += ["--model", "fake", "--k", "5"]
    assert main([*common, "--out", str(tmp_path / "plain.tsv")]) == 0
    ray_args = ["--ray", "local", "--ray-workers", "2", "--ray-batch", "64", "--ray-cache", str(tmp_path / "c")]
    assert main([*common, "--out", str(tmp_path / "ray.tsv"), *ray_args]) == 0
    rows = {}
    for name in ("plain", "ray"):
        with open(tmp_path / f"{name}.tsv", encoding="utf-8") as fh:
            rows[name] = list(csv.reader(fh, delimiter="\t"))
    assert len(rows["plain"]) == 1 + 5 * 166
    assert [(r[0], r[1], r[3]) for r in rows["plain"]] == [(r[0], r[1], r[3]) for r in rows["ray"]]
    np.testing.assert_allclose(
        [float(r[2]) for r in rows["plain"][1:]], [float(r[2]) for r in rows["ray"][1:]], atol=2e-6
    )


class CountingFake:
    """Makes a fake encoder that appends how many texts it encodes to a file (any process)."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self):
        log = self.log

        class Counting(FakeEncoder):
            def embed_batch(self, texts):
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{len(texts)}\n")
                return super().embed_batch(texts)

        return Counting()


def _counted(log: Path) -> int:
    return sum(int(n) for n in log.read_text().split()) if log.exists() else 0


def test_second_run_on_the_cluster_encodes_nothing_new(corpus, tmp_path):
    caps, _ = corpus
    texts = [c.full_text for c in caps]
    log, config = tmp_path / "encoded.log", _config(tmp_path)
    first, stats = embed_on_ray(texts[:200], "passage", CountingFake(log), 64, config)
    assert _counted(log) == stats.encoded == len(set(texts[:200]))
    # the second run asks for 97 new texts and 200 old ones (some twice): only the new are encoded
    asked = texts + texts[10:40]
    second, stats = embed_on_ray(asked, "passage", CountingFake(log), 64, config)
    assert stats.encoded == len(set(texts) - set(texts[:200]))
    assert _counted(log) == len(set(texts))
    np.testing.assert_array_equal(second[:200], first)
    np.testing.assert_array_equal(second, FakeEncoder().encode_documents(asked))
    assert any(config.cache_folder.rglob("*.npz"))
    # a driver that sees the shared folder sends nothing to the cluster at all
    enc = RayEncoder(CountingFake(log), config, min_remote=0)
    np.testing.assert_array_equal(enc.encode_documents(asked), second)
    assert enc.stats.texts == 0 and _counted(log) == len(set(texts))


class DiesOnce(EmbedWorker):
    """Kills its own process (no clean-up, as a lost node would) in its third batch, once."""

    marker: Path

    def __call__(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)
        return super().__call__(batch)


def test_a_worker_killed_mid_run_is_retried_and_the_run_finishes_the_same(corpus, tmp_path):
    caps, _ = corpus
    texts = [c.full_text for c in caps]
    marker = tmp_path / "died"
    worker = type("DiesOnceHere", (DiesOnce,), {"marker": marker})
    vecs, stats = embed_on_ray(texts, "passage", ModelRecipe("fake"), 64, _config(tmp_path, batch=16), worker=worker)
    assert marker.exists(), "no worker was killed: the test did not test anything"
    np.testing.assert_array_equal(vecs, FakeEncoder().encode_documents(texts))


class Interrupt(Exception):
    pass


def test_a_stopped_conference_ranking_resumes_from_its_checkpoint(corpus, tmp_path):
    caps, demands = corpus
    demands = demands[:90]
    plain_engine = MatchEngine(FakeEncoder()).fit(caps)
    want = rank_batch(lambda ds: plain_engine.match_partners_batch(ds, k=5), demands, 5)
    config, checkpoint = _config(tmp_path, batch=16), tmp_path / "ranking.jsonl"
    engine = plain_engine  # the capability embedding on Ray is tested above

    def stop_after_first_batches(done: int, total: int) -> None:
        if done >= 30:
            raise Interrupt

    # Chunks of 16, so the interrupt comes after two or three of six whichever finishes first
    # (with the default 64 the 26-demand chunk could finish first and the interrupt after all 90).
    with pytest.raises(Interrupt):
        rank_batch_on_ray(
            engine, demands, 5, checkpoint, stop_after_first_batches, make_encoder=ModelRecipe("fake"), config=config,
            chunk=16,
        )
    written = len(checkpoint.read_text(encoding="utf-8").splitlines()) - 1
    assert 30 <= written < 90
    seen = []
    got = rank_batch_on_ray(
        engine, demands, 5, checkpoint, lambda d, t: seen.append(d), make_encoder=ModelRecipe("fake"), config=config,
        chunk=16,
    )
    assert seen[0] == written and seen[-1] == 90  # only the rest was ranked
    assert list(got) == list(want)
    for d in want:
        assert [m.partner_id for m in got[d]] == [m.partner_id for m in want[d]]
        np.testing.assert_allclose([m.score for m in got[d]], [m.score for m in want[d]], rtol=1e-6)
        assert [h.capability_id for m in got[d] for h in m.evidence] == [
            h.capability_id for m in want[d] for h in m.evidence
        ]
    # and the plain path reads the same checkpoint: nothing left to rank
    again = rank_batch(lambda ds: pytest.fail("ranked again"), demands, 5, checkpoint)
    assert list(again) == list(want)
