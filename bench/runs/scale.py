"""Projected wall time of a run folder's matrix on N parallel workers, from its records' own
measured wall time per run (`timing.wall_s`: training and evaluation of one experiment).

Assumptions, stated with every table: the runs are independent tasks (no run waits for
another), a worker runs one task at a time as fast as the machine that measured the records
ran it (one core per run there), and starting a worker costs nothing beside the run. Three
numbers per N:

- waves: ceil(runs / N) waves, each as long as the longest run: what a scheduler that waits
  for a whole wave before starting the next would take (an upper bound);
- greedy: the longest runs first, each to the worker that frees up first (Ray's queue hands
  the next task to the first free worker; `genbench` submits in matrix order, not longest
  first, so a real run ends between greedy and waves, near greedy when N is well below the
  number of runs);
- bound: max(total / N, longest run): no schedule can beat it.

`speedup` divides every run's time (a GPU's gain over one core, assumed, not measured here).

    python -m bench.runs.scale results/study [--workers 1,8,32,128] [--speedup 10]
"""

from __future__ import annotations

import argparse
import heapq
import math
from pathlib import Path

from .records import read_records

WORKERS = (1, 8, 32, 128)


def run_times(run_dir) -> list[float]:
    """Measured wall seconds of every run with a timing (a failed run without one is left out)."""
    out = []
    for rec in read_records(run_dir):
        t = (rec.get("timing") or {}).get("wall_s")
        if isinstance(t, (int, float)) and math.isfinite(t) and t > 0:
            out.append(float(t))
    return out


def greedy_makespan(times: list[float], n: int) -> float:
    """Longest processing time first onto n workers: the finishing time of the last one."""
    free = [0.0] * min(n, len(times))
    for t in sorted(times, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free, default=0.0)


def projection(times: list[float], workers=WORKERS, speedup: float = 1.0) -> list[dict]:
    times = [t / speedup for t in times]
    longest, total = max(times, default=0.0), sum(times)
    return [
        {
            "workers": n,
            "waves_s": math.ceil(len(times) / n) * longest,
            "greedy_s": greedy_makespan(times, n),
            "bound_s": max(total / n, longest),
        }
        for n in workers
    ]


def _hms(s: float) -> str:
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def markdown(times: list[float], workers=WORKERS, speedup: float = 1.0) -> str:
    lines = [
        f"{len(times)} runs, {_hms(sum(times))} of run time in all, longest run {_hms(max(times, default=0))}"
        + (f"; every run's time divided by an assumed speed-up of {speedup:g}" if speedup != 1 else ""),
        "",
        "| workers | waves: ceil(runs/N) x longest | greedy, longest first | bound: max(total/N, longest) |",
        "|---|---|---|---|",
    ]
    for row in projection(times, workers, speedup):
        lines.append(
            f"| {row['workers']} | {_hms(row['waves_s'])} | {_hms(row['greedy_s'])} | {_hms(row['bound_s'])} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.runs.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--workers", default=",".join(map(str, WORKERS)))
    p.add_argument("--speedup", type=float, default=1.0)
    a = p.parse_args(argv)
    times = run_times(a.run_dir)
    if not times:
        p.error(f"{a.run_dir}: no records with a measured wall time")
    print(markdown(times, tuple(int(n) for n in a.workers.split(",")), a.speedup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
