"""Smoke test of CUDA's default paths ('auto'): FusedRNN, FusedGRU and FusedLSTM
in float32, bfloat16 and float64, with and without a mask, at a batch on each
side of B·H = 65536 (where 'auto' switched kernels when it took the persistent
kernel), forward and backward, against the same module in float64 on the CPU.

Each case runs in its own process with a time limit, several at once, so that a
hang or a crash fails one case instead of the run. One line per case, then
"N of M cases passed"; the exit status is 0 only if all passed.
Usage: python scripts/device_smoke.py [--timeout 40] [--jobs 8] [--device cuda]
"""
import argparse
import concurrent.futures
import itertools
import subprocess
import sys
import time

CELLS = ("rnn", "gru", "lstm")
DTYPES = ("float32", "bfloat16", "float64")
SHAPES = ((8, 256), (128, 1024))  # B·H = 2048 and 131072
# Largest error against float64, relative to the tensor's largest entry.
TOLERANCE = dict(float32=1e-4, bfloat16=6e-2, float64=1e-9)
STEPS, FEATURES = 16, 32


def run_case(device: str, cell: str, dtype_name: str, masked: bool, batch: int,
             hidden: int) -> str:
    import torch

    import rnn_fused
    from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

    torch.manual_seed(0)
    cls = dict(rnn=FusedRNN, gru=FusedGRU, lstm=FusedLSTM)[cell]
    reference = cls(FEATURES, hidden, dtype=torch.float64)
    x = torch.randn(STEPS, batch, FEATURES, dtype=torch.float64)
    states = [torch.randn(1, batch, hidden, dtype=torch.float64)
              for _ in range(2 if cell == "lstm" else 1)]
    mask = (torch.rand(STEPS, batch) > 0.3) if masked else None
    dtype = getattr(torch, dtype_name)
    path = rnn_fused.plan(batch, hidden, STEPS, dtype, device, cell=cell).backend

    def run(module, on, dtype):
        inputs = [t.detach().to(on, dtype).requires_grad_() for t in [x] + states]
        hx = tuple(inputs[1:]) if cell == "lstm" else inputs[1]
        out, final = module(inputs[0], hx, mask=None if mask is None else mask.to(on),
                            reset_state=0.5 if masked else None)
        finals = list(final) if cell == "lstm" else [final]
        torch.manual_seed(1)
        loss = sum((t.double() * torch.randn(t.shape, dtype=torch.float64).to(on)).sum()
                   for t in [out] + finals)
        loss.backward()
        return [out] + finals + [t.grad for t in inputs] + [p.grad for p in module.parameters()]

    fused = cls(FEATURES, hidden, device=device, dtype=dtype)
    fused.load_state_dict(reference.state_dict())
    expected = run(reference, "cpu", torch.float64)
    actual = run(fused, device, dtype)
    worst = max(((a.double().cpu() - e).abs().max() / e.abs().max().clamp_min(1e-30)).item()
                for a, e in zip(actual, expected))
    if not worst <= TOLERANCE[dtype_name]:
        raise AssertionError(f"error {worst:.2e} above {TOLERANCE[dtype_name]:.0e} ({path})")
    return f"{path}, largest relative error {worst:.1e}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=40)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--device", default="cuda", help="cpu checks the script itself")
    parser.add_argument("--case", nargs=5, metavar=("CELL", "DTYPE", "MASKED", "B", "H"),
                        help="run one case here (what each subprocess does)")
    args = parser.parse_args()
    if args.case:
        cell, dtype, masked, batch, hidden = args.case
        print(run_case(args.device, cell, dtype, masked == "mask", int(batch), int(hidden)))
        return
    cases = [(cell, dtype, masked, str(b), str(h)) for cell, dtype, masked, (b, h)
             in itertools.product(CELLS, DTYPES, ("mask", "no-mask"), SHAPES)]

    def attempt(case):
        start = time.monotonic()
        try:
            done = subprocess.run([sys.executable, __file__, "--device", args.device, "--case",
                                   *case],
                                  capture_output=True, text=True, timeout=args.timeout)
            ok = done.returncode == 0
            detail = (done.stdout.strip() if ok
                      else (done.stderr.strip().splitlines() or ["no output"])[-1])
        except subprocess.TimeoutExpired:
            ok, detail = False, f"timed out after {args.timeout:.0f} s"
        line = (f"{' '.join(case[:3])} B={case[3]} H={case[4]}: "
                f"{'passed' if ok else 'FAILED'} in {time.monotonic() - start:.1f} s ({detail})")
        print(line, flush=True)
        return ok

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        passed = sum(pool.map(attempt, cases))
    print(f"{passed} of {len(cases)} cases passed")
    sys.exit(0 if passed == len(cases) else 1)


if __name__ == "__main__":
    main()
