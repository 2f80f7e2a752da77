"""A dependency-free progress bar (the GPU machines have no tqdm)."""
import sys
import time


def progress(items, description: str):
    items = list(items)
    start = time.perf_counter()
    for done, item in enumerate(items):
        elapsed = time.perf_counter() - start
        eta = f", ~{elapsed / done * (len(items) - done):.0f} s left" if done else ""
        bar = "#" * (20 * done // len(items))
        print(f"\r{description} [{bar:<20}] {done}/{len(items)} ({elapsed:.0f} s{eta})   ",
              end="", file=sys.stderr, flush=True)
        yield item
    print(f"\r{description} [{'#' * 20}] {len(items)}/{len(items)} "
          f"({time.perf_counter() - start:.0f} s)          ", file=sys.stderr, flush=True)
