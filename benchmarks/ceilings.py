"""The machine's measured ceilings that benchmarks/NOTES.md compares against:
GEMM throughput (large and at the per-step shapes) and memory bandwidth."""
import argparse

import torch
from torch.utils import benchmark


def median_seconds(fn, min_run_time):
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32")
    for m, k, n in [(2048, 2048, 2048), (8, 128, 128), (64, 512, 512), (16384, 256, 512),
                    (512, 16384, 512)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        seconds = median_seconds(lambda: torch.mm(a, b, out=out), args.seconds)
        print(f"sgemm {m}x{k}x{n}: {2 * m * k * n / seconds / 1e9:.1f} GFLOP/s "
              f"({seconds * 1e6:.1f} µs)")
    source = torch.randn(64 * 2**20)
    target = torch.empty_like(source)
    seconds = median_seconds(lambda: target.copy_(source), args.seconds)
    print(f"copy 256 MiB: {2 * source.numel() * 4 / seconds / 1e9:.1f} GB/s (read + write)")


if __name__ == "__main__":
    main()
