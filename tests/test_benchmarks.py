"""`make bench`, the main job: it runs, and it leaves a checkout as it found it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout


needs_git = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")


@needs_git
def test_default_output_folder_is_ignored_by_git():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from result_files import RECORD, SCRATCH
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    probe = Path(SCRATCH, "bench-cpu-probe-float32.md").relative_to(ROOT)
    assert git("check-ignore", str(probe)).strip() == str(probe)
    recorded = Path(RECORD, "bench-cpu-probe-float32.md").relative_to(ROOT)
    assert git("check-ignore", str(recorded)).strip() == "", "--record must write tracked files"


@needs_git
def test_quick_benchmark_runs_and_writes_only_its_output_folder(tmp_path):
    before = git("status", "--porcelain", "--untracked-files=all")
    run = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--only", "sequences", "--cell", "rnn",
         "--repeats", "1", "--warmup", "0", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert git("status", "--porcelain", "--untracked-files=all") == before
    (result,) = tmp_path.glob("bench-cpu-*-float32-*.json")
    rows = json.loads(result.read_text())["rows"]
    assert {row["impl"] for row in rows} >= {"FusedRNN", "nn.RNN"}
    assert all(row["forward+backward"] > 0 for row in rows)
    # The quick set's plain case is at B=8, and the run ends with its summary.
    assert {row["B"] for row in rows if row["scenario"] == "plain rnn"} == {8}
    summary = run.stdout[run.stdout.index("## summary"):]
    assert "- rnn: " in summary and "the torch.nn module" in summary
    assert "the per-step loop of RL code" in summary and "path at B=8" in summary


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_each_implementation_follows_each_other_equally_often(count):
    """The timing orders: every repeat times each implementation once, and over a
    cycle of orders each runs right after each other one the same number of times."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from timing import orders
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    turns = orders(count)
    assert all(sorted(order) == list(range(count)) for order in turns)
    follows = {}
    for order in turns:
        for before, after in zip(order, order[1:]):
            follows[before, after] = follows.get((before, after), 0) + 1
    assert len(follows) == count * (count - 1)
    assert len(set(follows.values())) == 1, follows
