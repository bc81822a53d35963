from __future__ import annotations

import pytest

from matcher import settings
from matcher.errors import MatcherError


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("1", True), ("OFF", False), ("false", False)])
def test_bf16_switch(monkeypatch, value, expected):
    monkeypatch.setenv("TECHMATCH_BF16", value)
    assert settings.use_bfloat16() is expected


def test_bf16_auto_follows_the_cpu(monkeypatch):
    monkeypatch.delenv("TECHMATCH_BF16", raising=False)
    monkeypatch.setattr(settings, "cpu_has_native_bfloat16", lambda: True)
    assert settings.use_bfloat16() is True
    monkeypatch.setattr(settings, "cpu_has_native_bfloat16", lambda: False)
    assert settings.use_bfloat16() is False


def test_bf16_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("TECHMATCH_BF16", "maybe")
    with pytest.raises(MatcherError, match="TECHMATCH_BF16"):
        settings.use_bfloat16()


def test_home_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TECHMATCH_HOME", str(tmp_path))
    assert settings.techmatch_home() == tmp_path
