"""Machine-level settings of the engine, from the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from matcher.errors import MatcherError


def techmatch_home() -> Path:
    """$TECHMATCH_HOME, else ~/.cache/techmatch. Everything in it can be rebuilt."""
    home = os.environ.get("TECHMATCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "techmatch"


_SWITCH = {"1": True, "on": True, "true": True, "yes": True, "0": False, "off": False, "false": False, "no": False}


def use_bfloat16() -> bool:
    """$TECHMATCH_BF16: on, off or auto (the default).

    bfloat16 matrix products give the same embeddings to a cosine of 0.9999 and run about
    1.7x faster where the CPU multiplies bfloat16 natively (AMX or AVX512-BF16); elsewhere
    they are emulated and slower, so `auto` turns them on only on such CPUs."""
    value = os.environ.get("TECHMATCH_BF16", "auto").strip().lower()
    if value == "auto":
        return cpu_has_native_bfloat16()
    if value not in _SWITCH:
        raise MatcherError(f"TECHMATCH_BF16 must be on, off or auto, not {value!r}")
    return _SWITCH[value]


@lru_cache(maxsize=1)
def cpu_has_native_bfloat16() -> bool:
    """True when /proc/cpuinfo lists amx_bf16 or avx512_bf16 (Linux; False elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


def xlsx_timeout_seconds() -> float:
    """$TECHMATCH_XLSX_TIMEOUT: seconds an .xlsx sheet may take to read (default 30)."""
    value = os.environ.get("TECHMATCH_XLSX_TIMEOUT", "30").strip()
    try:
        seconds = float(value)
    except ValueError:
        raise MatcherError(f"TECHMATCH_XLSX_TIMEOUT must be a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise MatcherError(f"TECHMATCH_XLSX_TIMEOUT must be positive, not {value!r}")
    return seconds


BACKENDS = ("torch", "onnx", "onnx-fp32", "onnx-queries", "openvino")


def encoder_backend() -> str | None:
    """$TECHMATCH_BACKEND: torch, onnx (int8 ONNX Runtime), onnx-fp32, onnx-queries (documents on
    torch, queries on int8 ONNX Runtime), openvino (static int8 on OpenVINO), or auto (the default,
    returned as None: each model's measured default, see encoders.DEFAULT_BACKENDS)."""
    value = os.environ.get("TECHMATCH_BACKEND", "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise MatcherError(f"TECHMATCH_BACKEND must be auto, {', '.join(BACKENDS)}, not {value!r}")
    return value
