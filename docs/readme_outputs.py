"""The README's blocks of program output, generated from runs and checked against them.

A generated block in README.md is introduced by a marker line naming its source,

    <!-- output: landscape -->
    ```
    ...what the command printed...
    ```

and its source is ``docs/outputs/<name>.txt``: a header (the command, the date of the run and
the commit it ran on) and the output as printed. ``update`` re-runs the command and rewrites
both; ``check`` (run by ``tests/test_readme_outputs.py`` in CI) fails when a README block is
not exactly its source's output, so a hand-edited or stale block cannot be merged.

    python docs/readme_outputs.py check
    python docs/readme_outputs.py update landscape        # re-run (default model: minutes)
    python docs/readme_outputs.py list
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SOURCES = ROOT / "docs" / "outputs"
MARKER = re.compile(r"<!-- output: ([\w-]+) -->\n```[a-z]*\n(.*?)```", re.S)

# name -> (the command as the README shows it, the arguments run, and where its output ends).
# `{tmp}` is a scratch folder, `{shared}` the shared evaluation data ($TECHMATCH_SHARED_DATA,
# default ../shared/data); output lines from `stop` on (file paths) are left out.
COMMANDS: dict[str, tuple[str, list[str], str | None]] = {
    "landscape": ("techmatch landscape --task corpora/qiqihar --out landscape/",
                  ["landscape", "--task", "corpora/qiqihar", "--out", "{tmp}/landscape"], "files written:"),
    "evaluate-qiqihar": ("techmatch evaluate corpora/qiqihar", ["evaluate", "corpora/qiqihar"], None),
    **{f"evaluate-{task}": (f"techmatch evaluate ../shared/data/{task}", ["evaluate", f"{{shared}}/{task}"], None)
       for task in ("scifact", "sbir-firms", "csl-disciplines", "tatoeba-zh-en")},
    "learn-simulate-qiqihar": (
        "techmatch learn simulate --task corpora/qiqihar --outcomes 1000 --retrain-every 100 --seeds 30 "
        "--plot docs/img/learning-curve-qiqihar.png",
        ["learn", "simulate", "--task", "corpora/qiqihar", "--outcomes", "1000", "--retrain-every", "100",
         "--seeds", "30", "--plot", "docs/img/learning-curve-qiqihar.png"], None),
    "learn-simulate-csl-disciplines": (
        "techmatch learn simulate --task ../shared/data/csl-disciplines --outcomes 1000 --retrain-every 100 "
        "--seeds 10 --plot docs/img/learning-curve-csl.png",
        ["learn", "simulate", "--task", "{shared}/csl-disciplines", "--outcomes", "1000", "--retrain-every", "100",
         "--seeds", "10", "--plot", "docs/img/learning-curve-csl.png"], None),
    "learn-simulate-sbir-firms": (
        "techmatch learn simulate --task ../shared/data/sbir-firms --outcomes 1000 --retrain-every 100 "
        "--seeds 10 --plot docs/img/learning-curve-sbir.png",
        ["learn", "simulate", "--task", "{shared}/sbir-firms", "--outcomes", "1000", "--retrain-every", "100",
         "--seeds", "10", "--plot", "docs/img/learning-curve-sbir.png"], None),
    "check-demands": ("techmatch check-demands corpora/qiqihar", ["check-demands", "corpora/qiqihar"], None),
    "learn-cv-qiqihar": ("techmatch learn cv --task corpora/qiqihar", ["learn", "cv", "--task", "corpora/qiqihar"],
                         None),
    **{f"learn-cv-{task}": (f"techmatch learn cv --task ../shared/data/{task}",
                            ["learn", "cv", "--task", f"{{shared}}/{task}"], None)
       for task in ("csl-disciplines", "scifact")},
}


def shared_data() -> str:
    return os.environ.get("TECHMATCH_SHARED_DATA") or str(ROOT.parent / "shared" / "data")


def source_path(name: str) -> Path:
    return SOURCES / f"{name}.txt"


def read_source(name: str) -> tuple[dict[str, str], str]:
    """(header fields, output) of a stored run."""
    text = source_path(name).read_text(encoding="utf-8")
    head, _, body = text.partition("\n\n")
    fields = dict(line[2:].split(": ", 1) for line in head.splitlines() if line.startswith("# "))
    return fields, body


def readme_blocks(text: str | None = None) -> dict[str, str]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return {m.group(1): m.group(2) for m in MARKER.finditer(text)}


def check() -> list[str]:
    """Problems: a marked block whose source is missing or whose text differs from it."""
    problems = []
    for name, block in readme_blocks().items():
        if not source_path(name).exists():
            problems.append(f"{name}: no source {source_path(name).relative_to(ROOT)}")
            continue
        _, output = read_source(name)
        if block != output:
            problems.append(f"{name}: the README block differs from {source_path(name).relative_to(ROOT)} "
                            f"(run `python docs/readme_outputs.py update {name}` or copy the source)")
    return problems


def run(name: str) -> str:
    shown, argv, stop = COMMANDS[name]
    with tempfile.TemporaryDirectory() as tmp:
        args = [a.replace("{tmp}", tmp).replace("{shared}", shared_data()) for a in argv]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run([sys.executable, "-c", "import sys; from matcher.cli import main; sys.exit(main())",
                               *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{shown} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.splitlines()
    if stop is not None and stop in lines:
        lines = lines[:lines.index(stop)]
    return "\n".join(lines) + "\n"


def update(name: str) -> None:
    shown = COMMANDS[name][0]
    output = run(name)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    header = (f"# command: {shown}\n# date: {dt.date.today().isoformat()}\n"
              f"# code: {commit or 'unknown'} (plus uncommitted changes, if any)\n")
    SOURCES.mkdir(parents=True, exist_ok=True)
    source_path(name).write_text(header + "\n" + output, encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    if name in readme_blocks(text):
        text = MARKER.sub(lambda m: m.group(0) if m.group(1) != name else
                          f"<!-- output: {name} -->\n```\n{output}```", text)
        README.write_text(text, encoding="utf-8")
    print(f"{name}: {source_path(name).relative_to(ROOT)} written" +
          (", README block replaced" if name in readme_blocks(text) else " (not in the README)"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("check")
    sub.add_parser("list")
    up = sub.add_parser("update")
    up.add_argument("names", nargs="+", choices=sorted(COMMANDS))
    args = ap.parse_args(argv)
    if args.action == "list":
        for name, (shown, _, _) in COMMANDS.items():
            fields = read_source(name)[0] if source_path(name).exists() else {}
            print(f"{name:<26} {fields.get('date', 'never run'):<12} {shown}")
        return 0
    if args.action == "update":
        for name in args.names:
            update(name)
        return 0
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
