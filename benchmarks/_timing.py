"""Small timing helpers shared by cynet's benchmarks.

Benchmarks compare thread counts, and both cynet's OpenMP kernels and numpy's BLAS
fix their thread count when they are imported. So each thread count runs in a fresh
child process whose environment is prepared by :func:`thread_env`; the child prints its
results as one JSON line, which :func:`run_worker` picks out of its stdout.

Nothing here imports numpy, cynet or torch: the parent process stays light and the
children import them only after their environment is set.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

# Marks the worker's result line, so stray prints on stdout do not break the parse.
RESULT_MARKER = "@@cynet-bench-result@@ "


@dataclass(frozen=True)
class TimingPolicy:
    """How many times one callable is run for one measurement."""

    warmup: int = 3         # untimed calls first (caches, allocator, thread pools)
    min_calls: int = 20     # at least this many timed calls ...
    min_time: float = 0.5   # ... and at least this much timed wall time (s) ...
    max_calls: int = 300    # ... but never more calls than this


FULL = TimingPolicy()
QUICK = TimingPolicy(warmup=1, min_calls=3, min_time=0.02, max_calls=10)


def time_call(fn: Callable[[], object], policy: TimingPolicy = FULL) -> float:
    """Median wall time of ``fn()`` in seconds, measured with ``time.perf_counter``."""
    for _ in range(policy.warmup):
        fn()
    samples = []
    total = 0.0
    while len(samples) < policy.max_calls:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        samples.append(elapsed)
        total += elapsed
        if len(samples) >= policy.min_calls and total >= policy.min_time:
            break
    return statistics.median(samples)


def summarize(values: Sequence[float]) -> tuple[float, float]:
    """(median, spread) of repeated measurements; spread = (max - min) / median."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med > 0 else 0.0
    return med, spread


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive numbers (nan for an empty sequence)."""
    values = [v for v in values if v is not None]
    if not values:
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))


def thread_env(n: int, base: dict | None = None) -> dict:
    """Environment for a child process whose kernels should use ``n`` threads."""
    env = dict(os.environ if base is None else base)
    for var in ("CYNET_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        env[var] = str(n)
    # Spinning OpenMP workers steal the cores OpenBLAS's threads need (and vice versa).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def run_worker(script: str, args: Sequence[str], threads: int) -> dict:
    """Run ``python script *args`` with ``threads`` threads; return its JSON result.

    The child's stderr (progress messages) goes straight to ours.
    """
    proc = subprocess.run(
        [sys.executable, script, *args],
        env=thread_env(threads),
        stdout=subprocess.PIPE,
        text=True,
    )
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER):])
        elif line.strip():
            print(line, file=sys.stderr)  # pass on anything else the child printed
    if proc.returncode != 0 and result is None:
        raise RuntimeError(f"benchmark worker for {threads} thread(s) failed "
                           f"(exit status {proc.returncode})")
    if result is None:
        raise RuntimeError(f"benchmark worker for {threads} thread(s) printed no result")
    return result


def emit_result(result: dict) -> None:
    """Print a worker's result for :func:`run_worker` to collect."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def _system_cpu_seconds():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice
    fields += [0] * (8 - len(fields))
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(fields[:8]) - fields[3] - fields[4] - fields[7]
    return busy / hz, fields[7] / hz


class OtherLoadProbe:
    """How busy the machine was with work other than this process, between two points.

    On a shared machine a slow measurement is often someone else's build or test run;
    this turns that into a number: the average count of cores busy with other processes
    (machine-wide busy time less this process's own CPU time), and the steal time a
    hypervisor took. Both are None where /proc/stat is not available. With
    ``children=True`` the CPU time of this process's finished children counts as its own
    (a benchmark that runs its work in subprocesses).
    """

    def __init__(self, children=False):
        self._children = children
        self._start = self._sample()

    def _sample(self):
        own = os.times()
        cpu = own.user + own.system
        if self._children:
            cpu += own.children_user + own.children_system
        return time.perf_counter(), cpu, _system_cpu_seconds()

    def stop(self) -> dict:
        wall0, own0, sys0 = self._start
        wall1, own1, sys1 = self._sample()
        wall = wall1 - wall0
        if sys0 is None or sys1 is None or wall <= 0:
            return {"other_cores": None, "steal_cores": None}
        other = (sys1[0] - sys0[0]) - (own1 - own0)
        return {"other_cores": max(other, 0.0) / wall,
                "steal_cores": (sys1[1] - sys0[1]) / wall}


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def core_counts() -> str:
    """Logical CPUs, and how many this process may run on when that is fewer."""
    total = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = total
    text = f"{total} logical CPUs"
    if usable and usable != total:
        text += f" ({usable} usable)"
    return text


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 right_aligned: set | frozenset = frozenset(), markdown: bool = False) -> str:
    """A plain-text (space-aligned) or markdown table; ``right_aligned`` holds column
    indices whose cells are numbers."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join("---:" if i in right_aligned else "---"
                                for i in range(len(headers))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right_aligned else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])]
                     + [line(r) for r in rows])


def peak_rss_kib() -> int | None:
    """This process's peak resident set size so far, in KiB (Linux ``ru_maxrss``)."""
    try:
        import resource
    except ImportError:  # not on a POSIX system
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command as run from the repository root (naming no path on this machine)."""
    return "python " + script + "".join(" " + shlex.quote(a) for a in argv)


def report_facts(script: str, argv: Sequence[str], markdown: bool) -> list:
    """The first facts of every report: the command, the date and the CPU."""
    command = command_line(script, argv)
    return [("command", f"`{command}`" if markdown else command),
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("CPU", f"{cpu_model()}, {core_counts()}")]


def facts_text(facts: Sequence[tuple], markdown: bool) -> str:
    """``(name, value)`` facts as a markdown list or as aligned plain text."""
    if markdown:
        return "\n".join(f"- {k}: {v}" for k, v in facts)
    width = max(len(k) for k, _ in facts)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)


def fmt(value, digits: int, missing: str = "") -> str:
    """``value`` with ``digits`` decimals; ``missing`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"
