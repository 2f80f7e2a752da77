"""The device check's stages, what they verified per CUDA path, and which code
each path is.

`python scripts/device_summary.py --plan` prints the stages (name, time limit,
the paths it verifies, default or optional) for scripts/device_check.sh.
`python scripts/device_summary.py OUT` reads OUT/stages.tsv (one line per stage
run: name, status, seconds; a rerun's line replaces the earlier one) and
OUT/env.log, and writes OUT/summary.json:

    {"commit": ..., "device": ..., "stages": {stage: {"status", "seconds"}},
     "paths": {path: "passed" | "failed" | "not run"}}

A path passed when a stage that verifies it ran, each default one among them
passed, and no optional one that ran failed; it failed when one of them failed
or timed out; otherwise it was not run. Committed summaries live in
benchmarks/results/device-checks/*/summary.json; tests/test_device_verified.py
holds 'auto' to them through PATHS and last_change().
"""
import json
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional

# Every CUDA path and the files its device behaviour depends on beyond what the
# CPU build already tests: its kernels, their launchers and the cell functors.
_CELLS = ["csrc/cells"]
_ONE_LAUNCH = ["csrc/cuda/common"] + _CELLS
_ONE_GATE = ["csrc/cuda/persistent/one_gate_kernel.cuh", "csrc/cuda/persistent/one_gate_args.cuh"]
PATHS: Dict[str, List[str]] = {
    "per-step": ["csrc/cuda/per_step", "csrc/engine/per_step_loop.h", "csrc/engine/step.h"] + _CELLS,
    "persistent": ["csrc/cuda/persistent"] + _ONE_LAUNCH,
    "gated-persistent": ["csrc/cuda/persistent"] + _ONE_LAUNCH,
    "cluster": ["csrc/cuda/cluster"] + _ONE_GATE + _ONE_LAUNCH,
    "tiled": ["csrc/cuda/cluster"] + _ONE_GATE + _ONE_LAUNCH,
}
# The per-step loop is CUDA's fallback: 'auto' runs it whatever a device check
# said, since there is nothing safer to run.
FALLBACKS = ("per-step",)
# CUDA files that belong to no one path.
SHARED = ["csrc/cuda/README.md"]
# (name, time limit in seconds, the paths it verifies, run by default): the
# default stages fit in 9 minutes, the default paths first.
STAGES = [
    ("env", 15, [], True),
    ("build", 240, [], True),
    ("smoke", 45, ["per-step"], True),
    ("default-tests", 75, ["per-step"], True),
    ("grid-tests", 45, ["persistent"], True),
    ("memcheck", 40, ["per-step"], True),
    ("grid-bench", 45, [], True),
    ("gated-tests", 35, ["gated-persistent"], True),
    ("cluster-tests", 90, ["cluster"], False),
    ("tiled-tests", 60, ["tiled"], False),
    ("grid-sanitize", 60, ["persistent"], False),
    ("gated-sanitize", 60, ["gated-persistent"], False),
    ("cluster-sanitize", 90, ["cluster", "tiled"], False),
    ("latency", 90, [], False),
    ("gated-bench", 120, [], False),
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARIES = os.path.join(ROOT, "benchmarks", "results", "device-checks")


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


def last_change(path: str) -> str:
    """The newest commit that changed the path's code."""
    found = git("log", "-1", "--format=%H", "--", *PATHS[path])
    if found.returncode != 0 or not found.stdout.strip():
        raise RuntimeError(f"git log found no commit for {path}: {found.stderr}")
    return found.stdout.strip()


def contains(commit: str, ancestor: str) -> bool:
    """Whether `commit` has `ancestor` in its history (or is it)."""
    return git("merge-base", "--is-ancestor", ancestor, commit).returncode == 0


def committed_summaries() -> List[dict]:
    summaries = []
    for folder in sorted(os.listdir(SUMMARIES)) if os.path.isdir(SUMMARIES) else []:
        file = os.path.join(SUMMARIES, folder, "summary.json")
        if os.path.exists(file):
            with open(file) as f:
                summaries.append(dict(json.load(f), folder=folder))
    return summaries


def verifying_summary(path: str, summaries: List[dict]) -> Optional[dict]:
    """A summary in which `path` passed at a commit that holds its current code."""
    changed = last_change(path)
    for summary in summaries:
        if summary["paths"].get(path) == "passed" and contains(summary["commit"], changed):
            return summary
    return None


def summarize(out: str) -> dict:
    stages = {}
    with open(os.path.join(out, "stages.tsv")) as f:
        for line in f:
            name, status, seconds = line.rstrip("\n").split("\t")
            stages[name] = dict(status=status, seconds=int(seconds))

    def verdict(path: str) -> str:
        mine = [(name, default) for name, _, paths, default in STAGES if path in paths]
        ran = [stages[name]["status"] for name, _ in mine if name in stages]
        if any(status != "passed" for status in ran):
            return "failed"
        required = all(name in stages for name, default in mine if default)
        return "passed" if ran and required else "not run"

    device = "unknown"
    env = os.path.join(out, "env.log")
    if os.path.exists(env):
        with open(env) as f:
            found = re.search(r"^device (.+)$", f.read(), re.MULTILINE)
            device = found.group(1) if found else device
    return dict(commit=os.environ.get("COMMIT", "unknown"), device=device, stages=stages,
                paths={path: verdict(path) for path in PATHS})


if __name__ == "__main__":
    if sys.argv[1] == "--plan":
        for name, limit, paths, default in STAGES:
            print(name, limit, ",".join(paths) or "-", "default" if default else "optional")
        raise SystemExit(0)
    summary = summarize(sys.argv[1])
    with open(os.path.join(sys.argv[1], "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
