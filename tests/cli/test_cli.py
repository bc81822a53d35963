from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from matcher.cli.commands import main

DEMANDS = [
    {
        "需求编号": "D1",
        "需求名称": "货车车体防腐涂层",
        "需求描述": "铁路货车在-40°C下涂层附着力下降，需要低温防腐涂层",
        "所属行业": "轨道交通装备",
        "所在县区": "富拉尔基区",
        "企业名称": "北辰车辆",
        "联系人": "王工 0452-0000001",
        "是否保密": "否",
    },
    {
        "需求编号": "D2",
        "需求名称": "配方奶粉 OPO",
        "需求描述": "需要 OPO 结构脂 酶法工艺",
        "所属行业": "乳业",
        "所在县区": "克东县",
        "企业名称": "北乳",
        "联系人": "李工",
        "是否保密": "是",
    },
]
CAPS = [
    {
        "id": "C1",
        "partner_id": "P1",
        "partner_name": "寒地涂层课题组",
        "title": "低温防腐涂层",
        "text": "铁路货车 防腐涂层 低温附着力",
    },
    {
        "id": "C2",
        "partner_id": "P2",
        "partner_name": "乳品研究所",
        "title": "OPO 结构脂",
        "text": "酶法 OPO 结构脂 婴幼儿配方奶粉",
    },
    {
        "id": "C3",
        "partner_id": "P3",
        "partner_name": "Cold Lab",
        "title": "Rail coatings",
        "text": "coatings for freight cars",
    },
]


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "demands.csv"
    with open(d, "w", encoding="gb18030", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(DEMANDS[0]))
        w.writeheader()
        w.writerows(DEMANDS)
    c = tmp_path / "caps.jsonl"
    c.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CAPS), encoding="utf-8")
    return d, c


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ingest_index_match_search(files, tmp_path, capsys):
    d, c = files
    ws = str(tmp_path / "ws")
    assert run(capsys, "ingest", "--kind", "demands", str(d), "-w", ws)[0] == 0
    assert run(capsys, "ingest", "--kind", "capabilities", str(c), "-w", ws)[0] == 0
    code, out, _ = run(capsys, "index", "-w", ws, "--model", "fake")
    assert code == 0 and "3 capabilities, 2 demands" in out
    code, out, _ = run(capsys, "match", "D1", "-w", ws, "--model", "fake", "--k", "2")
    assert code == 0 and "寒地涂层课题组" in out.splitlines()[1] and "shared terms" in out
    code, out, _ = run(capsys, "match", "OPO 结构脂", "-w", ws, "--model", "fake", "--json")
    assert json.loads(out)[0]["partner_id"] == "P2"
    code, out, _ = run(capsys, "match", "coatings", "-w", ws, "--model", "fake", "--level", "capability")
    assert "Rail coatings" in out.splitlines()[0]
    code, out, _ = run(capsys, "search", "OPO", "-w", ws, "--model", "fake", "--public-only")
    assert "D2" not in out
    code, out, _ = run(capsys, "search", "--partner", "P1", "-w", ws, "--model", "fake")
    assert out.splitlines()[0].find("D1") > 0


def test_bad_file_is_rejected_whole_with_row_and_field(tmp_path, capsys):
    bad = tmp_path / "d.csv"
    bad.write_text("需求编号,需求名称,需求描述\nD1,a,ok\nD2,,\nD1,c,dup\n", encoding="utf-8")
    ws = tmp_path / "ws"
    code, _, err = run(capsys, "ingest", "--kind", "demands", str(bad), "-w", str(ws))
    assert code == 2 and "row 3" in err and "row 4" in err and "d.csv" in err
    assert not (ws / "demands.jsonl").exists()


def test_rank_writes_tsv(files, tmp_path, capsys):
    d, c = files
    out = tmp_path / "run.tsv"
    code, _, _ = run(
        capsys, "rank", "--demands", str(d), "--capabilities", str(c), "--k", "2", "--out", str(out), "--model", "fake"
    )
    rows = list(csv.reader(open(out, encoding="utf-8"), delimiter="\t"))
    assert code == 0 and rows[0] == ["demand_id", "target_id", "score", "fit", "label", "rank"]
    assert {r[0] for r in rows[1:]} == {"D1", "D2"} and rows[1][5] == "1"
    assert all(0 <= float(r[3]) <= 1 and r[4] in ("strong", "possible", "weak") for r in rows[1:])
    # k is honoured: exactly k targets per demand, or all of them when fewer exist
    n_partners = len({json.loads(line)["partner_id"] for line in open(c, encoding="utf-8")})
    for k in (1, n_partners + 5):
        run(capsys, "rank", "--demands", str(d), "--capabilities", str(c), "--k", str(k), "--out", str(out),
            "--model", "fake")
        rows = list(csv.reader(open(out, encoding="utf-8"), delimiter="\t"))[1:]
        assert all(sum(r[0] == did for r in rows) == min(k, n_partners) for did in ("D1", "D2"))


def test_rank_refuses_long_texts_with_a_hint_and_accepts_them_when_raised(tmp_path, capsys):
    """sbir-topics holds 55 call texts over 20,000 characters: the upload guard refuses them
    (all or nothing), says how to accept them, and --max-text-chars ranks every demand."""
    d = tmp_path / "long.jsonl"
    rows = [{"id": "L1", "title": "低温涂层", "text": "货车 防腐涂层 低温附着力 " * 2_000},
            {"id": "S1", "title": "OPO", "text": "OPO 结构脂 酶法工艺"}]
    d.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    c = tmp_path / "caps.jsonl"
    c.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CAPS), encoding="utf-8")
    out = tmp_path / "run.tsv"
    argv = ["rank", "--demands", str(d), "--capabilities", str(c), "--out", str(out), "--model", "fake"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "row 1" in err and "text" in err and "--max-text-chars" in err
    assert not out.exists()
    code, _, _ = run(capsys, *argv, "--max-text-chars", "100000")
    ranked = list(csv.reader(open(out, encoding="utf-8"), delimiter="\t"))[1:]
    assert code == 0 and {r[0] for r in ranked} == {"L1", "S1"}
    assert next(r for r in ranked if r[0] == "L1")[1] == "P1"


def test_rank_rejects_a_limit_that_is_not_a_positive_number(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rank", "--demands", "d", "--capabilities", "c", "--out", "o", "--max-text-chars", "-5"])
    assert exit_info.value.code == 2 and "positive whole number" in capsys.readouterr().err


def test_evaluate_prints_table_and_json(tmp_path, capsys):
    task = tmp_path / "task"
    task.mkdir()
    (task / "demands.jsonl").write_text(
        '{"id": "q1", "title": "", "text": "低温防腐涂层"}\n{"id": "q2", "title": "", "text": "OPO 结构脂"}\n',
        encoding="utf-8",
    )
    (task / "capabilities.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CAPS), encoding="utf-8"
    )
    (task / "qrels.tsv").write_text("demand_id\ttarget_id\trelevance\nq1\tP1\t1\nq2\tP2\t1\n", encoding="utf-8")
    (task / "task.json").write_text('{"name": "tiny", "level": "partner", "language": "zh"}', encoding="utf-8")
    code, out, _ = run(capsys, "evaluate", str(task), "--model", "fake")
    assert code == 0 and "lexical" in out and "fused" in out and "nDCG@10" in out
    code, out, _ = run(capsys, "evaluate", str(task), "--model", "fake", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    forward = [r for r in rows if r["direction"] == "forward"]
    assert [r["method"] for r in forward] == ["lexical", "dense", "fused"] and forward[0]["mrr"] == 1.0
    reverse = [r for r in rows if r["direction"] == "reverse"]
    assert [r["method"] for r in reverse] == ["fit"] and 0 < reverse[0]["mrr"] <= 1
    code, out, _ = run(capsys, "evaluate", str(task), "--model", "fake", "--direction", "reverse",
                       "--reverse-methods", "fit,cosine")
    assert code == 0 and "reverse: each of 2 judged partners ranks the 2 demands" in out and "cosine" in out


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", str(tmp_path), "--model", "nope")
    assert code == 2 and "error:" in err


def test_help_does_not_import_torch_or_faiss():
    code = (
        "import sys, matcher.cli.commands as c; c.build_parser().format_help(); "
        "print(any(m in sys.modules for m in ('torch', 'faiss', 'pandas', 'sentence_transformers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("argv", [["match", "q", "--k", "0"], ["search", "q", "--k", "-2"],
                                  ["evaluate", "t", "--max-seq-length", "0"]])
def test_counts_below_one_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "positive whole number" in capsys.readouterr().err


def test_match_prints_the_query_text_not_a_method(files, tmp_path, capsys):
    """Regression (issue 13.4): a free-text query printed `<built-in method title of str object>`."""
    d, c = files
    ws = str(tmp_path / "ws")
    run(capsys, "ingest", "--kind", "demands", str(d), "-w", ws)
    run(capsys, "ingest", "--kind", "capabilities", str(c), "-w", ws)
    code, out, _ = run(capsys, "match", "低温环境下铁路货车车体防腐涂层", "-w", ws, "--model", "fake")
    assert code == 0 and out.splitlines()[0] == "Partners for: 低温环境下铁路货车车体防腐涂层"
    code, out, _ = run(capsys, "match", "D1", "-w", ws, "--model", "fake")
    assert out.splitlines()[0] == "Partners for: 货车车体防腐涂层"


def test_models_columns_are_separated(capsys):
    """Regression (issue 13.5): a long languages cell ran into the description."""
    from matcher.retrieval.encoders import REGISTRY

    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    header = lines[0]
    starts = [header.index(h) for h in ("ready", "languages", "description")]
    for spec, line in zip(REGISTRY.values(), lines[1:]):
        assert line.startswith(spec.name + " ")
        assert line[starts[1]:].startswith(spec.languages + " ")
        assert line[starts[2]:] == spec.description
