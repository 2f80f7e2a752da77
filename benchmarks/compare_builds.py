"""Two builds of rnn_fused, timed point by point, turn and turn about, on one machine.

    python benchmarks/compare_builds.py BASE_TREE HEAD_TREE [--full] [--pairs N]

Each tree (a checkout with its extension built in place) runs in its own worker
process, which builds the benchmark's cases from its own tree with the same seed.
For every point of `run.py`'s set the two workers take turns, one timed sample
each, in the order ABBA, so that a drift of the machine (a neighbour's load, the
clock) falls on both alike; the workers never run at once. A point's ratio is the
median of head/base over the pairs. The torch.nn modules run in both workers too:
they are the same code on both sides, so their ratios show the noise floor of the
comparison. Writes a JSON and a Markdown summary (benchmarks/out by default).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
# Lets the idle worker's OpenMP threads stop spinning before the other one starts.
HANDOVER_SECONDS = 0.02


def timed_impl(name):
    """The fused modules, and the torch.nn module each compares with (a noise control);
    not the Python loops, which take long and say nothing more about the noise."""
    return name.startswith(("Fused", "nn."))


def worker():
    """Answers JSON requests on stdin, one per line: `points` lists the points;
    `sample` times one sample of a point."""
    import itertools

    # The tree's own package and benchmarks, not this script's folder, which Python
    # put first.
    tree = sys.argv[sys.argv.index("--tree") + 1]
    sys.path[0:1] = [tree, os.path.join(tree, "benchmarks")]
    import torch
    from torch.utils import benchmark

    from scenarios import build_cases, names
    from short_sequences import BATCHES, HIDDEN, MODES, QUICK_POINTS, STEPS, implementations
    from timing import _time_once

    answers = sys.stdout
    sys.stdout = sys.stderr
    selection = sys.argv[sys.argv.index("--selection") + 1]
    cases = build_cases("cpu", torch.float32, selection)
    grid = (QUICK_POINTS if selection == "quick"
            else list(itertools.product(STEPS, BATCHES, HIDDEN)))
    short = [(cell, mode, *p) for cell in ("rnn", "gru", "lstm") for mode in MODES for p in grid]
    built = {}

    def point(kind, index):
        """(the case, or the short point's timers; per-impl state), one point kept at a time."""
        if (kind, index) not in built:
            built.clear()
            torch.manual_seed(0)
            if kind == "sequence":
                content = cases[index]()
            else:
                cell, mode, steps, batch, hidden = short[index]
                content = {name: benchmark.Timer("fn()", globals={"fn": fn},
                                                 num_threads=torch.get_num_threads())
                           for name, fn in implementations(steps, batch, hidden, mode, "cpu",
                                                           torch.float32, cell).items()}
            built[(kind, index)] = (content, {})
        return built[(kind, index)]

    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "points":
            answer = []
            for index in range(len(cases)):
                case = point("sequence", index)[0]
                answer += [dict(kind="sequence", index=index, impl=impl,
                                label=f"{case.scenario} {case.label}")
                           for impl in case.impls if timed_impl(impl)]
            for index, (cell, mode, steps, batch, hidden) in enumerate(short):
                answer += [dict(kind="short", index=index, impl=impl,
                                label=f"short {cell} {mode} T={steps} B={batch} H={hidden}")
                           for impl in names(cell)]
        elif request["kind"] == "sequence":
            case, turns = point("sequence", request["index"])
            impl = case.impls[request["impl"]]
            turn = turns[request["impl"]] = turns.get(request["impl"], -1) + 1
            forward, backward = _time_once(lambda i: impl(i).sum(),
                                           case.input_sets[turn % len(case.input_sets)], "cpu")
            answer = {"forward": forward, "forward+backward": forward + backward}
        else:
            timers, calls = point("short", request["index"])
            timer = timers[request["impl"]]
            if request["impl"] not in calls:
                # As timing.time_calls: enough calls for about 20 ms.
                calls[request["impl"]] = max(1, int(0.02 / timer.timeit(3).mean))
            answer = {"call": timer.timeit(calls[request["impl"]]).mean}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


class Worker:
    def __init__(self, tree, selection):
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--tree", os.path.abspath(tree),
             "--selection", selection],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.path.abspath(tree))

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"worker exited with {self.process.wait()}")
        time.sleep(HANDOVER_SECONDS)
        return json.loads(answer)


def tree_commit(tree):
    return subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("head")
    parser.add_argument("--full", dest="selection", action="store_const", const="full",
                        default="quick")
    parser.add_argument("--pairs", type=int, default=6, help="ABBA pairs per point")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", help="the points whose label contains this text")
    parser.add_argument("--out", default=os.path.join(BENCHMARKS, "out"))
    args = parser.parse_args()

    import platform
    import torch
    from progress import progress

    base, head = Worker(args.base, args.selection), Worker(args.head, args.selection)
    points = base.ask(op="points")
    if points != head.ask(op="points"):
        raise SystemExit("the two trees' benchmark sets differ")
    points = [p for p in points if args.only is None or args.only in p["label"]]
    rows = []
    for p in progress(points, desc="points"):
        request = dict(op="sample", kind=p["kind"], index=p["index"], impl=p["impl"])
        for _ in range(args.warmup):
            base.ask(**request), head.ask(**request)
        samples = {"base": [], "head": []}
        for pair in range(args.pairs):
            order = (("base", base), ("head", head))
            for name, side in order if pair % 2 == 0 else order[::-1]:
                samples[name].append(side.ask(**request))
        for measure in samples["base"][0]:
            ratios = [h[measure] / b[measure] for b, h in zip(samples["base"], samples["head"])]
            rows.append(dict(label=p["label"], impl=p["impl"], measure=measure,
                             base_s=statistics.median(s[measure] for s in samples["base"]),
                             head_s=statistics.median(s[measure] for s in samples["head"]),
                             ratio=statistics.median(ratios), ratios=ratios))

    env = dict(base=tree_commit(args.base), head=tree_commit(args.head),
               cpu=platform.processor() or platform.machine(), torch=torch.__version__,
               threads=torch.get_num_threads(), pairs=args.pairs, selection=args.selection)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"compare-{env['base']}-{env['head']}-{args.selection}")
    with open(stem + ".json", "w") as f:
        json.dump(dict(environment=env, rows=rows), f, indent=1)
    lines = [f"# {env['head']} against {env['base']}, CPU float32", "",
             ", ".join(f"{k}: {v}" for k, v in env.items()), "",
             "ratio = median over the ABBA pairs of head time / base time", "",
             "| point | implementation | measure | base ms | head ms | ratio |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['impl']} | {r['measure']} | {r['base_s'] * 1e3:.3f} | "
              f"{r['head_s'] * 1e3:.3f} | {r['ratio']:.3f} |" for r in rows]
    for fused in (True, False):
        chosen = [r["ratio"] for r in rows if r["impl"].startswith("Fused") == fused]
        if chosen:
            lines += ["", f"{'fused modules' if fused else 'same code on both sides (noise)'}: "
                          f"{len(chosen)} ratios, median {statistics.median(chosen):.3f}, "
                          f"{min(chosen):.3f}-{max(chosen):.3f}, beyond 3%: "
                          f"{sum(abs(r - 1) > 0.03 for r in chosen)}"]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[-4:]))
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
