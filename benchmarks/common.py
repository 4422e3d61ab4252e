"""Helpers shared by cynet's benchmarks: timing, run facts, report output.

Benchmarks compare thread counts, and both cynet's OpenMP kernels and numpy's BLAS
fix their thread count when they are imported. So each thread count runs in a fresh
child process (the same module with ``--worker``) whose environment is prepared by
:func:`thread_env`; the child prints its results as one JSON line, which
:func:`run_worker` picks out of its stdout.

Importing this module removes ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` from this
process's environment (and so from its children's): they make numpy's OpenBLAS pick
another kernel than it picks on users' machines. It must therefore be imported before
numpy; :data:`BLAS_OVERRIDES` records what was removed, and :func:`blas_facts` reports
the kernel OpenBLAS actually chose.

Nothing here imports numpy, cynet or torch at import time: the parent process stays
light and the children import them only after their environment is set. Facts about
cynet are read through its public API, and defensively, so that the same benchmarks
can measure an older checkout (run them from that checkout's directory with this
repository on ``PYTHONPATH``).
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

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
MODELS = os.path.join(ROOT, "models")

# Variables that steer OpenBLAS away from the kernel it would choose for this CPU.
BLAS_OVERRIDE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def unset_blas_overrides() -> dict:
    """Remove :data:`BLAS_OVERRIDE_VARS` from this process's environment; returns what
    was removed. Has no effect on a numpy already imported (see :data:`NUMPY_WAS_LOADED`)."""
    return {var: os.environ.pop(var) for var in BLAS_OVERRIDE_VARS if var in os.environ}


NUMPY_WAS_LOADED = "numpy" in sys.modules
BLAS_OVERRIDES = unset_blas_overrides()

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
    # OMP_WAIT_POLICY is left as the caller has it: cynet loads its OpenMP runtime with
    # a passive wait itself, and torch runs with its own default, as users get them
    for var in BLAS_OVERRIDE_VARS:
        env.pop(var, None)
    return env


def run_worker(module: str, args: Sequence[str], threads: int) -> dict:
    """Run ``python -m module *args`` with ``threads`` threads; return its JSON result.

    The child inherits the working directory, so it imports the same cynet and the same
    benchmarks as this process. Its stderr (progress messages) goes straight to ours.
    """
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
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


def command_line(module: str, argv: Sequence[str]) -> str:
    """The command as run from the repository root (naming no path on this machine)."""
    return "python -m " + module + "".join(" " + shlex.quote(a) for a in argv)


def report_facts(module: str, argv: Sequence[str], markdown: bool) -> list:
    """The first facts of every report: the command, the date, the CPU and the BLAS
    variables this run removed."""
    command = command_line(module, argv)
    removed = ", ".join(f"{k}={v}" for k, v in BLAS_OVERRIDES.items()) or "none were set"
    if NUMPY_WAS_LOADED:
        removed += " (numpy was loaded before: it may still use them)"
    return [("command", f"`{command}`" if markdown else command),
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("CPU", f"{cpu_model()}, {core_counts()}"),
            ("unset for this run", removed)]


def facts_text(facts: Sequence[tuple], markdown: bool) -> str:
    """``(name, value)`` facts as a markdown list or as aligned plain text."""
    if markdown:
        return "\n".join(f"- {k}: {v}" for k, v in facts)
    width = max(len(k) for k, _ in facts)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)


def finish(sections: list, started: float, all_ok: bool, failure: str) -> int:
    """Print the report's sections and the run's wall time (with ``failure`` when not
    ``all_ok``); return the process's exit status."""
    total = time.perf_counter() - started
    sections.append(f"total wall time: {total:.0f} s" + ("" if all_ok else f"\n{failure}"))
    print("\n\n".join(sections))
    return 0 if all_ok else 1


def fmt(value, digits: int, missing: str = "") -> str:
    """``value`` with ``digits`` decimals; ``missing`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"


def thread_tag(n: int) -> str:
    return f"[{n} thread{'s' if n != 1 else ''}]"


def logger(tag: str) -> Callable[[str], None]:
    """A function printing progress messages, prefixed with ``tag``, to stderr."""
    def log(msg):
        print(f"{tag} {msg}", file=sys.stderr, flush=True)
    return log


# --------------------------------------------------------------------------- definitions
def definition_path(name: str) -> str:
    """``models/NAME.json`` of this repository."""
    return os.path.join(MODELS, f"{name}.json")


def load_definition(name_or_path: str) -> dict:
    """A model definition: ``models/NAME.json`` for a bare name, else the file given."""
    path = name_or_path if name_or_path.endswith(".json") else definition_path(name_or_path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------- run facts
def blas_facts(np) -> dict:
    """numpy's BLAS: its build name and version, and from threadpoolctl (when installed)
    the library, the kernel it runs (``architecture``) and its thread count."""
    facts = {"build": "unknown", "runtime": []}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        facts["build"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy or an unusual build: not worth failing over
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        facts["runtime"] = None
        return facts
    try:
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                facts["runtime"].append({
                    "library": pool.get("internal_api", "?"),
                    "version": pool.get("version"),
                    "architecture": pool.get("architecture"),
                    "threads": pool.get("num_threads"),
                    "file": os.path.basename(pool.get("filepath", "")),
                })
    except Exception:
        facts["runtime"] = None
    return facts


def blas_text(facts: dict) -> str:
    """One line for :func:`blas_facts`: the build, then the kernel that ran."""
    runtime = facts.get("runtime")
    if runtime is None:
        return f"{facts['build']}; kernel unknown (threadpoolctl not installed)"
    if not runtime:
        return f"{facts['build']}; no BLAS library loaded"
    parts = [f"{r['library']} {r['version'] or ''}".strip()
             + f", kernel {r['architecture'] or '?'}"
             for r in runtime]
    return f"{facts['build']}; ran " + "; ".join(parts)


def blas_kernels(facts: dict) -> str:
    """The kernel name(s) OpenBLAS (or another BLAS) reported, for a short warning."""
    runtime = facts.get("runtime") or []
    return ", ".join(sorted({str(r["architecture"]) for r in runtime})) or "?"


def cynet_facts(cynet) -> dict:
    """cynet's version, whether it was built with OpenMP (None when the build does not
    say), its kernels' thread count, and where it was imported from."""
    import importlib

    info = {"version": getattr(cynet, "__version__", "unknown"), "openmp": None,
            "threads": None, "source": None, "commit": None}
    for module in ("cynet._build_info", "cynet._openmp"):  # where the build flag lives
        try:
            info["openmp"] = bool(importlib.import_module(module).openmp_enabled())
            break
        except Exception:  # absent in this version, or not built
            pass
    get_num_threads = getattr(cynet, "get_num_threads", None)
    if get_num_threads is not None:
        try:
            info["threads"] = int(get_num_threads())
        except Exception:
            pass
    package = os.path.dirname(os.path.abspath(getattr(cynet, "__file__", "") or "."))
    here = os.path.abspath(os.getcwd())
    info["source"] = ("./" + os.path.relpath(package, here)
                      if os.path.commonpath([package, here]) == here else "outside the "
                      "working directory")
    try:
        rev = subprocess.run(["git", "-C", package, "describe", "--always", "--dirty"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=10)
        if rev.returncode == 0 and rev.stdout.strip():
            info["commit"] = rev.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cynet_text(info: dict) -> str:
    openmp = {True: "on", False: "off", None: "?"}[info["openmp"]]
    where = f"from {info['source']}" if info.get("source") else ""
    if info.get("commit"):
        where += f", commit {info['commit']}"
    return f"{info['version']} (OpenMP {openmp}{', ' + where if where else ''})"


def omp_runtimes() -> list | None:
    """Distinct OpenMP runtime files mapped into this process (basenames only)."""
    names = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                path = fields[-1] if len(fields) >= 6 else ""
                if os.path.basename(path).startswith(("libgomp", "libiomp", "libomp")):
                    names.add(path)
    except OSError:
        return None
    # the same soname from two directories is two runtimes: count files, show basenames
    return sorted(os.path.basename(p) for p in names)


def build_warnings(cy: dict, blas: dict, threads: int) -> list:
    """Warnings about a run whose setup differs from what was asked for."""
    notes = []
    if cy["threads"] is not None and cy["threads"] != threads:
        notes.append(f"WARNING: cynet reports {cy['threads']} threads, expected {threads}")
    if cy["openmp"] is False and threads > 1:
        notes.append("WARNING: cynet was built without OpenMP: its kernels run on one thread")
    for r in blas.get("runtime") or []:
        if r["threads"] is not None and r["threads"] != threads:
            notes.append(f"WARNING: {r['library']} runs {r['threads']} threads, expected "
                         f"{threads}")
    return notes
