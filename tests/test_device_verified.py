"""'auto' takes a one-launch CUDA kernel only where a committed device check
passed it at its current code (docs/device-verification.md). Runs without a
GPU: the committed summaries (benchmarks/results/device-checks/*/summary.json),
git's history of each path's files (scripts/device_summary.py) and the list of
kernels the planner lets 'auto' take (rnn_fused::auto_kernels)."""
import os
import subprocess
import sys

import pytest
import torch

import rnn_fused  # noqa: F401  (registers the ops)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import device_summary  # noqa: E402

HAS_HISTORY = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"],
                             capture_output=True).returncode == 0
needs_history = pytest.mark.skipif(not HAS_HISTORY, reason="needs the git history of a clone")


def test_every_cuda_file_belongs_to_a_path():
    """A kernel file outside every path would change without unverifying anything."""
    listed = [os.path.normpath(p) for files in device_summary.PATHS.values() for p in files]
    listed += device_summary.SHARED
    for folder, _, files in os.walk(os.path.join(ROOT, "csrc", "cuda")):
        for name in files:
            file = os.path.relpath(os.path.join(folder, name), ROOT)
            assert any(file == p or file.startswith(p + os.sep) for p in listed), (
                f"{file} is in no CUDA path of scripts/device_summary.py")


def test_committed_summaries_are_well_formed():
    summaries = device_summary.committed_summaries()
    assert summaries, "no device check summary is committed"
    for summary in summaries:
        assert set(summary["paths"]) == set(device_summary.PATHS), summary["folder"]
        assert set(summary["paths"].values()) <= {"passed", "failed", "not run"}
        assert len(summary["commit"]) == 40, summary["folder"]
        assert summary["commit"][:7] in summary["folder"], (
            f"{summary['folder']} should name its commit {summary['commit'][:7]}")


@needs_history
def test_summaries_name_commits_of_this_history():
    for summary in device_summary.committed_summaries():
        assert device_summary.contains("HEAD", summary["commit"]), summary["folder"]


@needs_history
def test_auto_takes_only_kernels_verified_at_their_current_code():
    summaries = device_summary.committed_summaries()
    for kernel in torch.ops.rnn_fused.auto_kernels():
        assert kernel in device_summary.PATHS, f"'auto' takes {kernel!r}, which is no path"
        assert kernel not in device_summary.FALLBACKS
        verified = device_summary.verifying_summary(kernel, summaries)
        assert verified is not None, (
            f"'auto' takes the {kernel} kernel, whose code last changed in "
            f"{device_summary.last_change(kernel)[:10]}, and no committed device check "
            "passed it since; run scripts/device_check.sh on a GPU, or take it out of "
            "kAutoKernels (csrc/engine/plan.h)")


@needs_history
def test_verification_follows_the_code():
    """The 2026-11-27 H200 run passed the persistent kernel at 95073be; its code
    has changed since, so that run no longer verifies it."""
    summaries = device_summary.committed_summaries()
    old = [s for s in summaries if s["commit"].startswith("95073be")]
    assert old and old[0]["paths"]["persistent"] == "passed"
    changed = device_summary.last_change("persistent")
    assert not device_summary.contains("95073be", changed)
    assert device_summary.verifying_summary("persistent", old) is None
    for path in device_summary.FALLBACKS:
        verified = device_summary.verifying_summary(path, summaries)
        print(f"{path}: {'verified in ' + verified['folder'] if verified else 'not verified'} "
              f"(last changed {device_summary.last_change(path)[:10]})")
