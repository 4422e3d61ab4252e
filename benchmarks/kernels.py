"""Benchmark cynet's convolution and pooling kernels against PyTorch on the CPU.

Run from the repository root:

    python -m benchmarks.kernels                # 1 and 2 threads, 3 repeats
    python -m benchmarks.kernels --quick        # smoke run: few calls, 1 repeat
    python -m benchmarks.kernels --markdown     # a table for benchmarks/RESULTS.md

To measure another checkout (before/after a change), run these benchmarks from its
directory, where its cynet is built in place: ``cd OLD && PYTHONPATH=NEW python -m
benchmarks.kernels`` (NEW: this repository); the report names the commit it measured.

The cases keep their ids (a-f convolutions, g1-g3 pools, h1-h3 transposed convolutions):
code comments refer to them.

Each thread count runs in a fresh child process (this module with ``--worker``), because
cynet's OpenMP kernels and numpy's OpenBLAS fix their thread count at import; torch is
set with ``torch.set_num_threads`` in the same child. For every shape the child first
checks that cynet's forward output and gradients match torch's (so wrong code is never
timed), then times the forward pass alone and forward + backward, alternating cynet and
torch shape by shape. One measurement is the median of >= 20 calls (and >= 0.5 s) after
a warm-up. The whole measurement is repeated ``--repeats`` times, each time in a fresh
process and with the thread counts taking turns; the table shows the median of the
repeat medians with spread = (max - min) / median, and how busy the machine was with
other work (a shared machine's neighbours show up there, not silently in the numbers).

ratio = cynet time / torch time (< 1: cynet is faster). Convolution GFLOP/s count
2 * N * Cout * Hout * Wout * Cin / groups * kh * kw for the forward pass and three times
that for forward + backward (for a transposed convolution, H x W of its input instead of
Hout x Wout: each input element meets every output channel through every tap). The
child also times numpy's own float32 GEMM (n = 1024), the ceiling an im2col + GEMM
convolution can approach, and the report gives each convolution's fwd+bwd GFLOP/s as a
share of it. The report states which BLAS kernel
numpy's OpenBLAS ran (``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are unset for the
run, see ``benchmarks.common``). It measures and reports; the project's goals for these
numbers are in benchmarks/RESULTS.md.

Without torch the benchmark still runs and prints cynet's times only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from benchmarks.common import (FULL, QUICK, OtherLoadProbe, blas_facts, blas_kernels,
                               blas_text, build_warnings, command_line, cynet_facts,
                               cynet_text, emit_result, facts_text, finish, fmt, geomean, logger,
                               render_table, report_facts, run_worker, summarize,
                               thread_tag, time_call)

MODULE = "benchmarks.kernels"

# --------------------------------------------------------------------------- shapes
# name, description, input (N, Cin, H, W), Cout, kernel, stride, padding; all with bias
CONV_SHAPES = [
    ("a", "LeNet conv1", (64, 1, 28, 28), 6, 5, 1, 2),
    ("b", "LeNet conv2", (64, 6, 14, 14), 16, 5, 1, 0),
    ("c", "CIFAR block", (64, 64, 32, 32), 64, 3, 1, 1),
    ("d", "strided", (64, 32, 32, 32), 64, 3, 2, 1),
    ("e", "even kernel", (32, 16, 28, 28), 32, 4, 2, 1),
    ("f", "pointwise", (64, 64, 16, 16), 128, 1, 1, 0),
]
# transposed: name, description, input (N, Cin, H, W), Cout, kernel, stride, padding,
# output_padding; all with bias (the decoder layers of DCGAN / U-Net style networks)
CONVT_SHAPES = [
    ("h1", "ConvT 2x up", (32, 64, 16, 16), 32, 4, 2, 1, 0),
    ("h2", "ConvT 2x up, output_padding", (32, 64, 16, 16), 32, 3, 2, 1, 1),
    ("h3", "ConvT stride 1", (32, 64, 16, 16), 64, 3, 1, 1, 0),
]
POOL_INPUT = (64, 64, 32, 32)
# name, description, kind, kernel, stride, padding
POOL_SHAPES = [
    ("g1", "MaxPool k2 s2", "max", 2, 2, 0),
    ("g2", "MaxPool k3 s2 p1", "max", 3, 2, 1),
    ("g3", "AvgPool k2 s2", "avg", 2, 2, 0),
]
GEMM_N = 1024
TOLERANCE = 1e-3            # max |cynet - torch| relative to max |torch|
BUSY_WARNING = 0.25         # cores busy with other work above which a table is flagged
PASSES = ("fwd", "fwd+bwd")
IMPLS = ("cynet", "torch")
SEED = 20240601


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One benchmarked shape: what to call for each (implementation, pass)."""

    name: str
    label: str
    flops_fwd: float | None                     # None for pools (reported in ms only)
    calls: dict = field(default_factory=dict)   # (impl, pass) -> zero-argument callable
    check: Callable[[], None] | None = None     # raises when cynet disagrees with torch


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def _compare(what, got, want, np):
    """Raise AssertionError unless ``got`` (cynet) matches ``want`` (torch)."""
    if not isinstance(got, np.ndarray):
        raise AssertionError(f"{what}: cynet returned {type(got).__name__}, not an ndarray")
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, torch {want.shape}")
    if got.dtype != np.float32:
        raise AssertionError(f"{what}: dtype {got.dtype}, expected float32")
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{what}: non-finite values")
    scale = max(float(np.max(np.abs(want))), 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    if err > TOLERANCE:
        raise AssertionError(f"{what}: relative error {err:.2e} > {TOLERANCE:g}")


def make_conv_case(spec, F, np, torch, rng):
    name, desc, (N, C, H, W), Co, k, s, p = spec
    OH, OW = _out_size(H, k, s, p), _out_size(W, k, s, p)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((Co, C, k, k), dtype=np.float32) / np.float32(math.sqrt(C * k * k)))
    b = rng.standard_normal(Co, dtype=np.float32) * np.float32(0.1)
    gy = rng.standard_normal((N, Co, OH, OW), dtype=np.float32)
    case = Case(name, f"{name} {desc} {N}x{C}x{H}x{W}->{Co} k{k}s{s}p{p}",
                flops_fwd=2.0 * N * Co * OH * OW * C * k * k)

    def cy_fwd():
        return F.conv2d(x, w, b, stride=s, padding=p)

    def cy_fwd_bwd():
        y = F.conv2d(x, w, b, stride=s, padding=p)
        grads = F.conv2d_backward(gy, x, w, stride=s, padding=p, bias=True, input_grad=True)
        return y, grads

    case.calls[("cynet", "fwd")] = cy_fwd
    case.calls[("cynet", "fwd+bwd")] = cy_fwd_bwd
    if torch is None:
        return case

    TF = torch.nn.functional
    xt, wt, bt, gyt = (torch.from_numpy(a) for a in (x, w, b, gy))
    xg, wg, bg = (t.detach().requires_grad_(True) for t in (xt, wt, bt))

    def t_fwd():
        with torch.no_grad():
            return TF.conv2d(xt, wt, bt, stride=s, padding=p)

    def t_fwd_bwd():
        xg.grad = wg.grad = bg.grad = None
        y = TF.conv2d(xg, wg, bg, stride=s, padding=p)
        y.backward(gyt)
        return y

    def check():
        y, (gx, gw, gb) = cy_fwd_bwd()
        yt = t_fwd_bwd()
        _compare("output", y, yt.detach().numpy(), np)
        _compare("grad input", gx, xg.grad.numpy(), np)
        _compare("grad weight", gw, wg.grad.numpy(), np)
        _compare("grad bias", gb, bg.grad.numpy(), np)
        _compare("forward alone", cy_fwd(), t_fwd().numpy(), np)

    case.calls[("torch", "fwd")] = t_fwd
    case.calls[("torch", "fwd+bwd")] = t_fwd_bwd
    case.check = check
    return case


def make_conv_transpose_case(spec, F, np, torch, rng):
    name, desc, (N, C, H, W), Co, k, s, p, op = spec
    OH, OW = ((n - 1) * s - 2 * p + k + op for n in (H, W))
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((C, Co, k, k), dtype=np.float32) / np.float32(math.sqrt(Co * k * k)))
    b = rng.standard_normal(Co, dtype=np.float32) * np.float32(0.1)
    gy = rng.standard_normal((N, Co, OH, OW), dtype=np.float32)
    case = Case(name, f"{name} {desc} {N}x{C}x{H}x{W}->{Co} k{k}s{s}p{p}op{op}",
                flops_fwd=2.0 * N * C * H * W * Co * k * k)
    kw = dict(stride=s, padding=p, output_padding=op)

    def cy_fwd():
        return F.conv_transpose2d(x, w, b, **kw)

    def cy_fwd_bwd():
        y = F.conv_transpose2d(x, w, b, **kw)
        return y, F.conv_transpose2d_backward(gy, x, w, **kw, bias=True, input_grad=True)

    case.calls[("cynet", "fwd")] = cy_fwd
    case.calls[("cynet", "fwd+bwd")] = cy_fwd_bwd
    if torch is None:
        return case

    TF = torch.nn.functional
    xt, wt, bt, gyt = (torch.from_numpy(a) for a in (x, w, b, gy))
    xg, wg, bg = (t.detach().requires_grad_(True) for t in (xt, wt, bt))

    def t_fwd():
        with torch.no_grad():
            return TF.conv_transpose2d(xt, wt, bt, **kw)

    def t_fwd_bwd():
        xg.grad = wg.grad = bg.grad = None
        y = TF.conv_transpose2d(xg, wg, bg, **kw)
        y.backward(gyt)
        return y

    def check():
        y, (gx, gw, gb) = cy_fwd_bwd()
        yt = t_fwd_bwd()
        _compare("output", y, yt.detach().numpy(), np)
        _compare("grad input", gx, xg.grad.numpy(), np)
        _compare("grad weight", gw, wg.grad.numpy(), np)
        _compare("grad bias", gb, bg.grad.numpy(), np)
        _compare("forward alone", cy_fwd(), t_fwd().numpy(), np)

    case.calls[("torch", "fwd")] = t_fwd
    case.calls[("torch", "fwd+bwd")] = t_fwd_bwd
    case.check = check
    return case


def make_pool_case(spec, F, np, torch, rng):
    name, desc, kind, k, s, p = spec
    N, C, H, W = POOL_INPUT
    OH, OW = _out_size(H, k, s, p), _out_size(W, k, s, p)
    x = rng.standard_normal(POOL_INPUT, dtype=np.float32)
    gy = rng.standard_normal((N, C, OH, OW), dtype=np.float32)
    case = Case(name, f"{name} {desc} {N}x{C}x{H}x{W}", flops_fwd=None)

    if kind == "max":
        def cy_fwd():
            return F.max_pool2d(x, k, stride=s, padding=p)[0]

        def cy_fwd_bwd():
            y, indices = F.max_pool2d(x, k, stride=s, padding=p)
            return y, F.max_pool2d_backward(gy, indices, x.shape)
    else:
        def cy_fwd():
            return F.avg_pool2d(x, k, stride=s, padding=p)

        def cy_fwd_bwd():
            y = F.avg_pool2d(x, k, stride=s, padding=p)
            return y, F.avg_pool2d_backward(gy, x.shape, k, stride=s, padding=p)

    case.calls[("cynet", "fwd")] = cy_fwd
    case.calls[("cynet", "fwd+bwd")] = cy_fwd_bwd
    if torch is None:
        return case

    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    xt, gyt = torch.from_numpy(x), torch.from_numpy(gy)
    xg = xt.detach().requires_grad_(True)

    def t_fwd():
        with torch.no_grad():
            return pool(xt, k, s, p)

    def t_fwd_bwd():
        xg.grad = None
        y = pool(xg, k, s, p)
        y.backward(gyt)
        return y

    def check():
        y, gx = cy_fwd_bwd()
        yt = t_fwd_bwd()
        _compare("output", y, yt.detach().numpy(), np)
        _compare("grad input", gx, xg.grad.numpy(), np)
        _compare("forward alone", cy_fwd(), t_fwd().numpy(), np)

    case.calls[("torch", "fwd")] = t_fwd
    case.calls[("torch", "fwd+bwd")] = t_fwd_bwd
    case.check = check
    return case


def selected_specs(names):
    convs = [s for s in CONV_SHAPES if names is None or s[0] in names]
    transposed = [s for s in CONVT_SHAPES if names is None or s[0] in names]
    pools = [s for s in POOL_SHAPES if names is None or s[0] in names]
    return convs, transposed, pools


# --------------------------------------------------------------------------- worker
def gemm_gflops(np, calls):
    """Best-of-``calls`` GFLOP/s of numpy's square float32 matmul (n = GEMM_N)."""
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    b = rng.standard_normal((GEMM_N, GEMM_N), dtype=np.float32)
    out = np.empty((GEMM_N, GEMM_N), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(calls):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * GEMM_N ** 3 / best / 1e9


def worker(args):
    """Measure every shape once for one thread count; print the result as JSON."""
    started = time.perf_counter()
    import numpy as np

    import cynet
    from cynet import functional as F

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)

    policy = QUICK if args.quick else FULL
    log = logger(thread_tag(args.threads))

    rng = np.random.default_rng(SEED)
    convs, transposed, pools = selected_specs(args.shapes)
    cases = ([make_conv_case(s, F, np, torch, rng) for s in convs]
             + [make_conv_transpose_case(s, F, np, torch, rng) for s in transposed]
             + [make_pool_case(s, F, np, torch, rng) for s in pools])

    status = {}
    for case in cases:
        if case.check is None:
            status[case.name] = "unchecked (no torch)"
            continue
        try:
            case.check()
            status[case.name] = "ok"
        except Exception as exc:  # a wrong or crashing kernel: report it, do not time it
            status[case.name] = f"FAILED: {type(exc).__name__}: {exc}"
            log(f"{case.name}: {status[case.name]}")

    log(f"repeat {args.repeat_index + 1}/{args.repeats}")
    probe = OtherLoadProbe()  # the timed part only: imports and checks are not timed
    gemm = gemm_gflops(np, calls=3 if args.quick else 10)
    # times[shape][pass][impl] is a list (one entry here) so that repeats concatenate
    times = {c.name: {ps: {im: [] for im in IMPLS} for ps in PASSES} for c in cases}
    order = IMPLS if args.repeat_index % 2 == 0 else IMPLS[::-1]  # alternate who goes first
    for case in cases:
        if status[case.name].startswith("FAILED"):
            continue
        try:
            for ps in PASSES:
                for impl in order:  # interleaved: cynet and torch on the same shape
                    fn = case.calls.get((impl, ps))
                    if fn is not None:
                        times[case.name][ps][impl].append(time_call(fn, policy))
        except Exception as exc:
            status[case.name] = f"FAILED: {type(exc).__name__}: {exc}"
            log(f"{case.name}: {status[case.name]}")

    emit_result({
        "threads": args.threads,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_facts(np),  # after the timing: the library is loaded and has run
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cynet": cynet_facts(cynet),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "background": [probe.stop()],
        "gemm_gflops": [gemm],
        "cases": [{"name": c.name, "label": c.label, "flops_fwd": c.flops_fwd,
                   "status": status[c.name], "times": times[c.name]} for c in cases],
        "seconds": time.perf_counter() - started,
    })
    return 0


def merge_results(results):
    """Combine one thread count's workers (one per repeat) into a single result."""
    merged = json.loads(json.dumps(results[0]))  # a deep copy
    merged["repeats"] = len(results)
    for other in results[1:]:
        merged["gemm_gflops"] += other["gemm_gflops"]
        merged["background"] += other["background"]
        merged["seconds"] += other["seconds"]
        for case, more in zip(merged["cases"], other["cases"]):
            assert case["name"] == more["name"]
            if more["status"] != "ok" and case["status"] == "ok":
                case["status"] = more["status"]
            for ps in PASSES:
                for impl in IMPLS:
                    case["times"][ps][impl] += more["times"][ps][impl]
    return merged


# --------------------------------------------------------------------------- report
def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def summarize_result(result):
    """Rows (per shape and pass) plus the headline numbers of one worker's result."""
    rows, ratios = [], {ps: [] for ps in PASSES}
    for case in result["cases"]:
        failed = case["status"].startswith("FAILED")
        for ps in PASSES:
            med, spread = {}, {}
            for impl in IMPLS:
                samples = case["times"][ps][impl]
                med[impl], spread[impl] = summarize(samples) if samples else (None, None)
            ratio = (med["cynet"] / med["torch"]
                     if med["cynet"] is not None and med["torch"] else None)
            if ratio is not None:
                ratios[ps].append(ratio)
            flops = case["flops_fwd"]
            if flops is not None:
                flops *= 1 if ps == "fwd" else 3
            gflops = {impl: (flops / med[impl] / 1e9 if flops and med[impl] else None)
                      for impl in IMPLS}
            rows.append({
                "shape": case["label"], "pass": ps, "failed": failed,
                "status": case["status"], "name": case["name"],
                "ms": {impl: _ms(med[impl]) for impl in IMPLS},
                "ratio": ratio, "gflops": gflops, "spread": spread,
            })
    return rows, ratios


def _spread_text(spread, repeats):
    if repeats < 2:
        return ""
    parts = [f"{spread[i] * 100:.0f}%" if spread[i] is not None else "-" for i in IMPLS]
    return " / ".join(parts)


def report(result, markdown):
    """Text (plain or markdown) for one thread count; also returns whether all passed."""
    rows, ratios = summarize_result(result)
    n = result["threads"]
    headers = ["shape", "pass", "cynet ms", "torch ms", "ratio", "cynet GFLOP/s",
               "torch GFLOP/s", "spread cynet / torch"]
    table_rows = []
    for r in rows:
        first = r["pass"] == PASSES[0]
        shape = r["shape"] if first else ""
        if r["failed"]:
            if first:
                table_rows.append([shape, "", "WRONG" if "AssertionError" in r["status"]
                                   else "ERROR", "", "", "", "", ""])
            continue
        table_rows.append([
            shape, r["pass"], fmt(r["ms"]["cynet"], 3), fmt(r["ms"]["torch"], 3),
            fmt(r["ratio"], 2), fmt(r["gflops"]["cynet"], 1),
            fmt(r["gflops"]["torch"], 1), _spread_text(r["spread"], result["repeats"]),
        ])

    cy = result["cynet"]
    title = f"{n} thread{'s' if n != 1 else ''}"
    openmp = {True: "yes", False: "no", None: "?"}[cy["openmp"]]
    kernel = blas_kernels(result["blas"])
    other = [b["other_cores"] for b in result["background"] if b["other_cores"] is not None]
    steal = [b["steal_cores"] for b in result["background"] if b["steal_cores"] is not None]
    busy = ("cores busy with other work per repeat: "
            + ", ".join(f"{v:.2f}" for v in other)
            + f" (max stolen {max(steal):.2f})" if other else "background load unknown")
    setup = (f"cynet OpenMP: {openmp}, cynet threads: {cy['threads'] or '?'}, "
             f"torch threads: {result['torch_threads'] if result['torch'] else 'n/a'}, "
             f"numpy BLAS kernel: {kernel}, {busy}")
    out = [f"### {title}" if markdown else f"== {title} ({setup})", ""]
    if markdown:
        out += [setup, ""]
    out.append(render_table(headers, table_rows, right_aligned={2, 3, 4, 5, 6, 7},
                            markdown=markdown))
    out.append("")

    notes = []
    fb = ratios["fwd+bwd"]
    if fb:
        notes.append(f"geomean ratio cynet/torch, fwd+bwd over {len(fb)} shapes: "
                     f"{geomean(fb):.3f}   (fwd alone: {geomean(ratios['fwd']):.3f})")
    elif result["torch"] is None:
        notes.append("torch not available: cynet times only, no ratios")
    gemm = max(result["gemm_gflops"])
    if gemm:
        text = f"numpy float32 GEMM n={GEMM_N}: {gemm:.1f} GFLOP/s (best of its calls)"
        shares = [f"{r['name']} {100 * r['gflops']['cynet'] / gemm:.0f}%" for r in rows
                  if r["pass"] == "fwd+bwd" and not r["failed"] and r["gflops"]["cynet"]]
        if shares:
            text += "; cynet fwd+bwd GFLOP/s as a share of it: " + ", ".join(shares)
        notes.append(text)
    if other and max(other) > BUSY_WARNING:
        notes.append(f"WARNING: other processes kept up to {max(other):.1f} of the "
                     f"{os.cpu_count()} cores busy during a repeat: these numbers are "
                     "unreliable")
    notes += build_warnings(cy, result["blas"], n)
    for r in rows:
        if r["failed"] and r["pass"] == PASSES[0]:
            notes.append(f"{r['name']}: {r['status']} (not timed)")
        elif r["status"].startswith("unchecked") and r["pass"] == PASSES[0]:
            notes.append(f"{r['name']}: {r['status']}")
            break
    out += [f"- {x}" if markdown else x for x in notes]
    ok = not any(r["failed"] for r in rows)
    return "\n".join(out), ok


def header(results, argv, markdown):
    first = results[0]
    cy = first["cynet"]
    facts = report_facts(MODULE, argv, markdown) + [
        ("Python", first["python"]),
        ("numpy", f"{first['numpy']} ({blas_text(first['blas'])})"),
        ("torch", first["torch"] or ("not used (--no-torch)" if "--no-torch" in argv
                                     else "not installed")),
        ("cynet", cynet_text(cy)),
        ("OMP_WAIT_POLICY", first["omp_wait_policy"] or "unset"),
        ("method", f"median of >= {FULL.min_calls} calls and >= {FULL.min_time} s after "
                   f"{FULL.warmup} warm-up calls; median of {first['repeats']} repeats, each "
                   "in a fresh process; each shape checked against torch "
                   f"(max error <= {TOLERANCE:g} of max |value|) before timing; "
                   "ratio = cynet / torch time (< 1: cynet faster); fwd+bwd = all "
                   "gradients (input, weight, bias); spread = (max - min) / median"
                   if "--quick" not in argv else "--quick: too few calls to trust"),
    ]
    title = "## cynet kernels vs torch (CPU, float32, NCHW)\n\n" if markdown else ""
    return title + facts_text(facts, markdown) + "\n"


# --------------------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts, each in a fresh process (default 1,2)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="repeat the whole measurement R times (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="few calls per measurement: a smoke run")
    ap.add_argument("--markdown", action="store_true",
                    help="print markdown tables for benchmarks/RESULTS.md")
    ap.add_argument("--shapes", default=None,
                    help="comma-separated shape names to run, e.g. c,g1 (default: all)")
    ap.add_argument("--no-torch", action="store_true",
                    help="time cynet only, as if torch were not installed")
    ap.add_argument("--json", metavar="FILE", default=None,
                    help="also write the raw per-repeat results to FILE as JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repeat-index", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: expected integers like 1,2, got {args.threads!r}")
    if not args.thread_counts or min(args.thread_counts) < 1:
        ap.error("--threads: give at least one count >= 1")
    if args.shapes is not None:
        args.shapes = {s.strip() for s in args.shapes.split(",") if s.strip()}
        known = {s[0] for s in CONV_SHAPES + CONVT_SHAPES + POOL_SHAPES}
        if not args.shapes or args.shapes - known:
            ap.error(f"--shapes: unknown {sorted(args.shapes - known)}; "
                     f"known: {', '.join(sorted(known))}")
    if args.worker:
        if len(args.thread_counts) != 1:
            ap.error("--worker runs exactly one thread count")
        args.threads = args.thread_counts[0]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    started = time.perf_counter()
    # Each repeat is a fresh process per thread count, and the thread counts take turns,
    # so slow phases of a shared machine and per-process effects (allocator state, which
    # kernels a library picks) show up in the spread instead of biasing one column.
    runs = {n: [] for n in args.thread_counts}
    for r in range(args.repeats):
        for n in args.thread_counts:
            child = ["--worker", "--threads", str(n), "--repeats", str(args.repeats),
                     "--repeat-index", str(r)]
            if args.quick:
                child.append("--quick")
            if args.no_torch:
                child.append("--no-torch")
            if args.shapes:
                child += ["--shapes", ",".join(sorted(args.shapes))]
            runs[n].append(run_worker(MODULE, child, n))
    results = [merge_results(runs[n]) for n in args.thread_counts]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": command_line(MODULE, argv), "results": results}, f,
                      indent=1)

    sections, all_ok = [header(results, argv, args.markdown)], True
    for result in results:
        text, ok = report(result, args.markdown)
        sections.append(text)
        all_ok &= ok
    return finish(sections, started, all_ok,
                  "SOME SHAPES FAILED the correctness check and were not timed")


if __name__ == "__main__":
    sys.exit(main())
