from __future__ import annotations

import math

import pytest

from matcher.evaluate import accuracy_at_1, all_metrics, mrr, ndcg_at, recall_at

QRELS = {"q1": {"a": 2, "b": 1, "z": 0}, "q2": {"c": 1}, "q3": {"x": 0}}
RUN = {"q1": {"b": 0.9, "a": 0.8, "z": 0.7}, "q2": {"d": 0.9, "e": 0.5, "c": 0.1}}


def test_ndcg_graded_by_hand():
    dcg = (2**1 - 1) / math.log2(2) + (2**2 - 1) / math.log2(3)
    idcg = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    q2 = 1 / math.log2(4)
    assert ndcg_at(RUN, QRELS, 10) == pytest.approx((dcg / idcg + q2) / 2)


def test_mrr_recall_accuracy_by_hand():
    assert mrr(RUN, QRELS) == pytest.approx((1 + 1 / 3) / 2)
    assert recall_at(RUN, QRELS, 2) == pytest.approx((1 + 0) / 2)
    assert accuracy_at_1(RUN, QRELS) == pytest.approx(0.5)


def test_missing_runs_count_as_zero_and_inputs_untouched():
    snapshot = {k: dict(v) for k, v in RUN.items()}
    m = all_metrics({"q1": RUN["q1"]}, QRELS)
    assert m["mrr"] == pytest.approx(0.5)
    assert RUN == snapshot
