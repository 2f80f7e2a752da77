"""Where benchmark results go and what they are called. By default a run writes
to benchmarks/out/, which git ignores, so that `make bench` leaves a checkout
clean; --record writes to benchmarks/results/, the committed record. File names
carry the device, so that records of different machines sit side by side."""
import argparse
import datetime
import os
import platform
import re
import subprocess

import torch

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
SCRATCH = os.path.join(BENCHMARKS, "out")
RECORD = os.path.join(BENCHMARKS, "results")


def add_output_arguments(parser: argparse.ArgumentParser, default=SCRATCH):
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", default=default,
                       help="folder for the results (default: %(default)s, untracked)")
    where.add_argument("--record", dest="out", action="store_const", const=RECORD,
                       help=f"write into {os.path.relpath(RECORD)}/, to be committed")


def commit() -> str:
    """The commit measured: $COMMIT (a device machine's copy may have no .git), else git's."""
    if os.environ.get("COMMIT"):
        return os.environ["COMMIT"]
    found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                           cwd=BENCHMARKS)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    with open("/proc/cpuinfo") as f:
        found = re.search(r"model name\s*:\s*(.*)", f.read())
    return found.group(1) if found else platform.processor() or platform.machine()


def result_stem(directory: str, kind: str, device: str, dtype_name: str) -> str:
    """<directory>/<kind>-<device>-<device name>-<dtype>-<date>, without extension,
    e.g. results/bench-cuda-nvidia-h100-80gb-hbm3-float32-2026-11-28."""
    name = re.sub(r"\((r|tm)\)|\bcpu\b|@.*", "", device_name(device), flags=re.IGNORECASE)
    slug = "-".join(re.findall(r"[a-z0-9]+", name.lower()))
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory,
                        f"{kind}-{device}-{slug}-{dtype_name}-{datetime.date.today()}")
