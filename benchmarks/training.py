"""Benchmark whole training epochs, memory and import time of cynet against PyTorch (CPU).

Run from the repository root:

    python -m benchmarks.training                # 1 and 2 threads, 3 repeats
    python -m benchmarks.training --quick        # smoke run: few images, 1 repeat
    python -m benchmarks.training --markdown     # tables for benchmarks/RESULTS.md
    python -m benchmarks.training --profile      # also cProfile one cynet LeNet-5 epoch

To measure another checkout (before/after a change), run it from that checkout's
directory with this repository on the path: ``cd OLD && PYTHONPATH=NEW python -m
benchmarks.training``; the report names the commit it measured.

What is measured (each a ratio cynet / torch, or a figure per framework; the project's
goals for them are in benchmarks/RESULTS.md, not here):

1. LeNet-5 training epoch: ``models/lenet.json`` (``--lenet-json``), ``--images``
   (default 4,096) images 1x28x28, the batch size and optimizer of the file.
   cynet: ``Model.from_dict(...)`` and ``model.fit(x, y, epochs=1, batch_size=B)``.
   torch: the twin built from the same JSON (``benchmarks.torch_twin``) with its own
   loop over shuffled minibatches of the same uint8 data, converted per batch
   (``torch.from_numpy(xb).float().div_(255)``), ``F.cross_entropy``, the twin optimizer
   and ``zero_grad(set_to_none=True)``.
2. ``models/simple.json`` epoch (``--simple-json``, ``--simple-images``, default 2,048
   images), the same way. Both definitions' ``validation_split`` is dropped: training
   alone is timed.
3. Peak RSS of LeNet-5 training at batch 256: 50 steps on 4 fixed batches, each
   framework in its own fresh process (the cynet process never imports torch);
   ``ru_maxrss`` after import, after model + data setup and after the steps.
4. ``import cynet`` and ``import torch`` time in a fresh process, median of 5 runs.

Each thread count (``--threads``, default 1,2) runs phases 1 and 2 in a fresh child
process (this module with ``--worker``), because cynet's OpenMP kernels and numpy's
OpenBLAS fix their thread count at import (``CYNET_NUM_THREADS``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` are set before it starts; ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` are unset, and the report names the BLAS kernel that ran); torch gets
``torch.set_num_threads``.
In a child, each network is first evaluated (initial loss), then warmed up untimed on a
short epoch, then ``--repeats`` full epochs are timed per framework, interleaved and
alternating which framework goes first; the table shows the median epoch time and the
spread = (max - min) / median. After the timed epochs the loss on the same fixed subset
must be lower than the initial one, or the row is flagged: a network that does not learn
is not a benchmark. A probe from ``benchmarks.common`` records how many cores other
processes kept busy, and how much CPU the hypervisor stole, during each repeat (the
machine may be shared).

The synthetic data are the same for both frameworks: seeded random uint8 noise images
(values 0..127) and random labels 0..9, each image carrying a bright stripe at a place
that depends on its label, so that the networks can learn something within an epoch and
the learning check means something; the cost of an epoch does not depend on the values.

GFLOP/s count three times the forward FLOPs of the convolution and dense layers
(2 * multiply-adds), i.e. forward + both backward products, per image; ratio = cynet time
/ torch time (< 1: cynet faster).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time

from benchmarks.common import (OtherLoadProbe, blas_facts, blas_text, build_warnings,
                               command_line, cynet_facts, cynet_text, definition_path,
                               emit_result, facts_text, finish, fmt, load_definition, logger,
                               omp_runtimes, peak_rss_kib, render_table, report_facts,
                               run_worker, summarize, thread_env, thread_tag)

MODULE = "benchmarks.training"
SEED = 20240601
N_CLASSES = 10
WARMUP_IMAGES = 256         # the untimed warm-up epoch (4 batches of 64)
CHECK_IMAGES = 512          # fixed subset whose loss must fall during training
RSS_BATCH = 256
RSS_BATCHES = 4
RSS_STEPS = 50
IMPORT_RUNS = 5
BUSY_WARNING = 0.25         # cores busy with other work above which a result is flagged
IMPLS = ("cynet", "torch")
PHASES = ("lenet", "simple")

# --------------------------------------------------------------------------- data
def make_data(np, n, input_shape, seed=SEED):
    """``n`` seeded uint8 samples of ``input_shape`` and int64 labels 0..9.

    Noise in 0..127; each sample's flattened pixels get a run of 255s whose position is
    set by its label (a horizontal stripe in an image), so there is something to learn.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n, dtype=np.int64)
    x = rng.integers(0, 128, (n, *input_shape), dtype=np.uint8)
    flat = x.reshape(n, -1)
    size = flat.shape[1]
    stride = size // N_CLASSES
    length = max(1, stride // 2)
    for c in range(N_CLASSES):
        flat[y == c, c * stride:c * stride + length] = 255
    return x, y


def load_timed(path):
    """The definition at ``path``, for timing: without its validation split."""
    doc = load_definition(path)
    doc.setdefault("training", {})
    doc["training"].pop("validation_split", None)  # time training alone
    return doc


# --------------------------------------------------------------------------- training
class CynetRunner:
    def __init__(self, doc, np, cynet):
        self.np = np
        self.model = cynet.Model.from_dict(json.loads(json.dumps(doc)))

    def epoch(self, x, y, batch):
        return self.model.fit(x, y, epochs=1, batch_size=batch)[-1]["loss"]

    def loss(self, x, y):
        return float(self.model.evaluate(x, y, batch_size=256)["loss"])


class TorchRunner:
    def __init__(self, doc, np, torch):
        self.np, self.torch = np, torch
        self.F = torch.nn.functional
        torch.manual_seed(SEED)
        from benchmarks.torch_twin import torch_optimizer, torch_twin

        self.model, self.flops = torch_twin(doc)
        self.opt = torch_optimizer(doc.get("optimizer"), self.model.parameters())
        self.rng = np.random.default_rng(SEED + 1)

    def epoch(self, x, y, batch):
        torch, F, model, opt = self.torch, self.F, self.model, self.opt
        order = self.rng.permutation(len(x))
        total = 0.0
        for b0 in range(0, len(x), batch):
            idx = order[b0:b0 + batch]
            xb = torch.from_numpy(x[idx]).float().div_(255)
            yb = torch.from_numpy(y[idx])
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / len(x)

    def loss(self, x, y):
        from benchmarks.torch_twin import torch_evaluate

        return torch_evaluate(self.model, x, y)[0]


def run_phase(name, doc, n_images, args, np, cynet, torch, log):
    """Time ``args.repeats`` epochs of one network per framework, interleaved."""
    batch = doc["training"]["batch_size"]
    x, y = make_data(np, n_images, doc["input_shape"])
    check = slice(0, min(CHECK_IMAGES, n_images))
    runners = {"cynet": CynetRunner(doc, np, cynet), "torch": TorchRunner(doc, np, torch)}
    flops = runners["torch"].flops
    before = {k: r.loss(x[check], y[check]) for k, r in runners.items()}
    warm = slice(0, min(WARMUP_IMAGES, n_images))
    for impl, r in runners.items():
        r.epoch(x[warm], y[warm], batch)
    times = {k: [] for k in IMPLS}
    epoch_loss = {k: [] for k in IMPLS}
    background = []
    for rep in range(args.repeats):
        log(f"{name}: repeat {rep + 1}/{args.repeats}")
        probe = OtherLoadProbe()
        order = IMPLS if rep % 2 == 0 else IMPLS[::-1]
        for impl in order:
            gc.collect()
            start = time.perf_counter()
            loss = runners[impl].epoch(x, y, batch)
            times[impl].append(time.perf_counter() - start)
            epoch_loss[impl].append(float(loss))
        background.append(probe.stop())
    after = {k: r.loss(x[check], y[check]) for k, r in runners.items()}
    optimizer = ", ".join(f"{k} {v}" for k, v in doc["optimizer"].items() if k != "schedule")
    return {"images": n_images, "batch": batch, "optimizer": optimizer, "flops_fwd": flops,
            "times": times,
            "epoch_loss": epoch_loss, "loss_before": before, "loss_after": after,
            "background": background}


def worker(args):
    """Phases 1 and 2 for one thread count, in this (fresh) process; prints JSON."""
    started = time.perf_counter()
    import numpy as np

    import cynet  # before torch: the OpenMP runtime cynet links is loaded first
    import torch

    torch.set_num_threads(args.threads)
    log = logger(thread_tag(args.threads))

    phases = {}
    if "lenet" in args.only:
        phases["lenet"] = run_phase("LeNet-5", load_timed(args.lenet_json), args.images, args,
                                    np, cynet, torch, log)
    if "simple" in args.only:
        phases["simple"] = run_phase("simple.json", load_timed(args.simple_json),
                                     args.simple_images, args, np, cynet, torch, log)
    emit_result({
        "threads": args.threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_facts(np),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cynet": cynet_facts(cynet),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "omp_runtimes": omp_runtimes(),
        "phases": phases,
        "seconds": time.perf_counter() - started,
    })
    return 0


# --------------------------------------------------------------------------- memory
def rss_worker(args):
    """LeNet-5 training steps at batch 256 with one framework only; prints JSON."""
    kib = {"start": peak_rss_kib()}
    lenet = load_timed(args.lenet_json)
    import numpy as np
    if args.rss_worker == "cynet":
        import cynet
        kib["import"] = peak_rss_kib()
        model = cynet.Model.from_dict(lenet)
        step = model.train_step
    else:
        import torch
        torch.set_num_threads(args.threads)
        kib["import"] = peak_rss_kib()
        runner = TorchRunner(lenet, np, torch)
        F = torch.nn.functional

        def step(xb, yb):
            runner.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(runner.model(torch.from_numpy(xb).float().div_(255)),
                                   torch.from_numpy(yb))
            loss.backward()
            runner.opt.step()
            return loss.item(), None
    x, y = make_data(np, RSS_BATCH * RSS_BATCHES, lenet["input_shape"])
    batches = [(x[i * RSS_BATCH:(i + 1) * RSS_BATCH], y[i * RSS_BATCH:(i + 1) * RSS_BATCH])
               for i in range(RSS_BATCHES)]
    kib["setup"] = peak_rss_kib()
    losses = []
    start = time.perf_counter()
    for s in range(args.rss_steps):
        loss, _ = step(*batches[s % RSS_BATCHES])
        losses.append(float(loss))
    seconds = time.perf_counter() - start
    kib["steps"] = peak_rss_kib()
    emit_result({"framework": args.rss_worker, "threads": args.threads, "kib": kib,
                 "steps": args.rss_steps, "seconds_per_step": seconds / args.rss_steps,
                 "first_loss": losses[0], "last_loss": float(np.mean(losses[-RSS_BATCHES:])),
                 "torch_imported": "torch" in sys.modules,
                 "cynet_imported": "cynet" in sys.modules})
    return 0


# --------------------------------------------------------------------------- import time
def import_times(module, runs, threads):
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    out = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], env=thread_env(threads),
                              stdout=subprocess.PIPE, text=True, check=True)
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


# --------------------------------------------------------------------------- profile
def profile_worker(args):
    """cProfile one cynet LeNet-5 epoch (after a warm-up); prints the top functions."""
    import cProfile
    import io
    import pstats

    import numpy as np

    import cynet

    lenet = load_timed(args.lenet_json)
    batch = lenet["training"]["batch_size"]
    x, y = make_data(np, args.images, lenet["input_shape"])
    runner = CynetRunner(lenet, np, cynet)
    runner.epoch(x[:WARMUP_IMAGES], y[:WARMUP_IMAGES], batch)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    runner.epoch(x, y, batch)
    prof.disable()
    wall = time.perf_counter() - start
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(10)
    text = buf.getvalue()
    # keep the table, drop the header lines naming files on this machine
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    table = [_short_location(ln) for ln in lines[first:] if ln.strip()]
    emit_result({"threads": args.threads, "images": args.images, "wall": wall,
                 "table": table})
    return 0


def _short_location(line):
    """pstats names functions by their file's full path: keep the package-relative part
    (``cynet/functional.py``, ``numpy/...``) or else the file name."""
    parts = line.split(None, 5)
    if len(parts) < 6 or not parts[5].startswith(os.sep):
        return line
    where = parts[5]
    path, sep, rest = where.partition(":")
    short = os.path.basename(path)
    for marker in ("site-packages" + os.sep, "dist-packages" + os.sep, os.sep + "cynet" + os.sep):
        pos = path.rfind(marker)
        if pos >= 0:
            short = path[pos + len(marker):] if "packages" in marker else path[pos + 1:]
            break
    return line[:line.rindex(where)] + short + sep + rest


# --------------------------------------------------------------------------- report
def _spread(spread, repeats):
    return "" if repeats < 2 or spread is None else f"{spread * 100:.0f}%"


def phase_table(results, phase, repeats, markdown):
    headers = ["threads", "cynet s/epoch", "torch s/epoch", "ratio",
               "cynet img/s", "torch img/s", "cynet GFLOP/s", "torch GFLOP/s",
               "spread cynet / torch", "loss cynet", "loss torch", "other / stolen cores"]
    rows, notes, ok = [], [], True
    for res in results:
        ph = res["phases"].get(phase)
        if ph is None:
            continue
        med, spr = {}, {}
        for impl in IMPLS:
            med[impl], spr[impl] = summarize(ph["times"][impl])
        ratio = med["cynet"] / med["torch"]
        flops_epoch = 3 * ph["flops_fwd"] * ph["images"]
        learned = {impl: ph["loss_after"][impl] < ph["loss_before"][impl] for impl in IMPLS}
        loss_txt = {impl: f"{ph['loss_before'][impl]:.3f} -> {ph['loss_after'][impl]:.3f}"
                    + ("" if learned[impl] else " NOT LEARNING") for impl in IMPLS}
        other = [b["other_cores"] for b in ph["background"] if b["other_cores"] is not None]
        steal = [b["steal_cores"] for b in ph["background"] if b["steal_cores"] is not None]
        rows.append([
            str(res["threads"]), fmt(med["cynet"], 3), fmt(med["torch"], 3),
            fmt(ratio, 2),
            fmt(ph["images"] / med["cynet"], 0), fmt(ph["images"] / med["torch"], 0),
            fmt(flops_epoch / med["cynet"] / 1e9, 2), fmt(flops_epoch / med["torch"] / 1e9, 2),
            " / ".join(_spread(spr[i], repeats) for i in IMPLS).strip(" /"),
            loss_txt["cynet"], loss_txt["torch"],
            ", ".join(f"{o:.2f}/{t:.2f}" for o, t in zip(other, steal)) if other else "?",
        ])
        if not all(learned.values()):
            ok = False
            notes.append(f"{res['threads']} thread(s): loss on the first "
                         f"{min(CHECK_IMAGES, ph['images'])} images did not fall for "
                         + ", ".join(i for i in IMPLS if not learned[i])
                         + ": the timing is of a network that does not learn")
        notes += [f"{res['threads']} thread(s): {w}"
                  for w in build_warnings(res["cynet"], res["blas"], res["threads"])]
        if other and max(o + t for o, t in zip(other, steal)) > BUSY_WARNING:
            notes.append(f"{res['threads']} thread(s): WARNING: other processes kept up to "
                         f"{max(other):.2f} cores busy and the hypervisor stole up to "
                         f"{max(steal):.2f} cores during a repeat; the numbers are unreliable")
    first = next(r["phases"][phase] for r in results if phase in r["phases"])
    title = {"lenet": "LeNet-5 (models/lenet.json) training epoch",
             "simple": "models/simple.json training epoch"}[phase]
    setup = (f"{first['images']} images, batch {first['batch']}, {first['optimizer']}, "
             f"{3 * first['flops_fwd'] / 1e6:.2f} MFLOP per image (3 x forward); loss = "
             f"mean cross-entropy on the first {min(CHECK_IMAGES, first['images'])} images "
             "before training -> after the timed epochs; other / stolen cores = per repeat, "
             "the average number of cores busy with other processes / taken by the "
             "hypervisor (steal time)")
    out = [f"### {title}" if markdown else f"== {title}", "", setup, ""]
    out.append(render_table(headers, rows, right_aligned={0, 1, 2, 3, 4, 5, 6, 7, 8, 11},
                            markdown=markdown))
    if notes:
        out += [""] + [f"- {n}" if markdown else n for n in notes]
    return "\n".join(out), ok


def rss_table(rss, markdown):
    headers = ["framework", "threads", "after import MiB", "after setup MiB",
               f"peak after {rss[0]['steps']} steps MiB", "ms/step", "loss"]
    rows, notes = [], []
    for r in rss:
        kib = r["kib"]
        mib = {k: (v / 1024 if v is not None else None) for k, v in kib.items()}
        rows.append([r["framework"], str(r["threads"]), fmt(mib["import"], 1),
                     fmt(mib["setup"], 1), fmt(mib["steps"], 1),
                     fmt(r["seconds_per_step"] * 1e3, 1),
                     f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}"])
        if r["framework"] == "cynet" and r["torch_imported"]:
            notes.append("WARNING: torch was imported in the cynet-only process")
        if r["framework"] == "torch" and r["cynet_imported"]:
            notes.append("WARNING: cynet was imported in the torch-only process")
        if not r["last_loss"] < r["first_loss"]:
            notes.append(f"{r['framework']} ({r['threads']} thread(s)): loss did not fall over "
                         f"{r['steps']} steps (LeNet-5 with SGD sits on a plateau at first; "
                         "the memory figures stand)")
    out = ["### Peak RSS, LeNet-5 training at batch 256" if markdown
           else "== Peak RSS, LeNet-5 training at batch 256", "",
           f"one fresh process per framework and thread count; {RSS_BATCHES} fixed batches "
           f"of {RSS_BATCH} cycled; ru_maxrss (peak so far) after import, after model + "
           "data setup, after the steps; loss = first step -> mean of the last "
           f"{RSS_BATCHES} steps", ""]
    out.append(render_table(headers, rows, right_aligned={1, 2, 3, 4, 5}, markdown=markdown))
    if notes:
        out += [""] + [f"- {n}" if markdown else n for n in notes]
    return "\n".join(out)


def import_table(imports, markdown):
    headers = ["module", "median s", "runs s"]
    rows = []
    for module, runs in imports.items():
        med, _ = summarize(runs)
        rows.append([module, fmt(med, 3), ", ".join(f"{t:.3f}" for t in runs)])
    title = "Import time"
    out = [f"### {title}" if markdown else f"== {title}", "",
           "`python -c \"import time; t=time.perf_counter(); import MODULE; "
           "print(time.perf_counter()-t)\"`, fresh process each run" if markdown else
           "python -c 'import time; t=time.perf_counter(); import MODULE; "
           "print(time.perf_counter()-t)', fresh process each run", ""]
    out.append(render_table(headers, rows, right_aligned={1, 2}, markdown=markdown))
    return "\n".join(out)


def profile_text(prof, markdown):
    title = (f"cProfile of one cynet LeNet-5 epoch ({prof['images']} images, "
             f"{prof['threads']} thread(s), {prof['wall']:.2f} s under the profiler), "
             "top 10 by tottime")
    body = "\n".join(prof["table"])
    if markdown:
        return f"### {title}\n\n```\n{body}\n```"
    return f"== {title}\n\n{body}"


def header(results, argv, args, markdown):
    first = results[0] if results else None
    facts = report_facts(MODULE, argv, markdown) + [("Python", platform.python_version())]
    if first is not None:
        cy = first["cynet"]
        runtimes = first.get("omp_runtimes")
        facts += [
            ("numpy", f"{first['numpy']} ({blas_text(first['blas'])})"),
            ("torch", first["torch"]),
            ("cynet", cynet_text(cy)),
            ("OMP_WAIT_POLICY", first["omp_wait_policy"] or "unset"),
            ("OpenMP runtimes in the timing process",
             f"{len(runtimes)} ({', '.join(runtimes)})" if runtimes is not None else "?"),
            ("threads", ", ".join(f"{r['threads']} (cynet reports {r['cynet']['threads']}, "
                                  f"torch {r['torch_threads']})" for r in results)),
        ]
    facts.append(("method",
                  f"per thread count one fresh process; per network an untimed warm-up "
                  f"epoch of {WARMUP_IMAGES} images, then {args.repeats} full epoch(s) per "
                  "framework, interleaved (who goes first alternates); median epoch time, "
                  "spread = (max - min) / median; ratio = cynet / torch (< 1: cynet "
                  "faster); GFLOP/s = 3 x forward conv + dense FLOPs / epoch time"
                  + ("; --quick: a smoke run, do not quote" if args.quick else "")))
    title = "## cynet training vs torch (CPU)\n\n" if markdown else ""
    return title + facts_text(facts, markdown)


# --------------------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts, each in a fresh process (default 1,2)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed epochs per framework and network (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: few images, 1 repeat, fewer memory steps and import runs")
    ap.add_argument("--markdown", action="store_true",
                    help="print markdown tables for benchmarks/RESULTS.md")
    ap.add_argument("--images", type=int, default=None,
                    help="LeNet-5 images per epoch (default 4096; 512 with --quick)")
    ap.add_argument("--simple-images", type=int, default=None,
                    help="models/simple.json images per epoch (default 2048; 256 with --quick)")
    ap.add_argument("--lenet-json", default=definition_path("lenet"),
                    help="the model definition of phase 1 and of the memory phase (default: "
                         "the repository's models/lenet.json)")
    ap.add_argument("--simple-json", default=definition_path("simple"),
                    help="the model definition of phase 2 (default: the repository's "
                         "models/simple.json)")
    ap.add_argument("--only", default="lenet,simple,rss,import",
                    help="comma-separated parts to run: lenet, simple, rss, import "
                         "(default: all)")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile one cynet LeNet-5 epoch (first thread count)")
    ap.add_argument("--json", metavar="FILE", default=None,
                    help="also write the raw results to FILE as JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rss-worker", choices=IMPLS, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rss-steps", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.images is None:
        args.images = 512 if args.quick else 4096
    if args.simple_images is None:
        args.simple_images = 256 if args.quick else 2048
    if args.rss_steps is None:
        args.rss_steps = 12 if args.quick else RSS_STEPS
    if args.repeats < 1 or args.images < 1 or args.simple_images < 1 or args.rss_steps < 1:
        ap.error("--repeats, --images and --simple-images must be at least 1")
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: expected integers like 1,2, got {args.threads!r}")
    if not args.thread_counts or min(args.thread_counts) < 1:
        ap.error("--threads: give at least one count >= 1")
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = args.only - {"lenet", "simple", "rss", "import"}
    if unknown or not args.only:
        ap.error(f"--only: unknown part(s) {sorted(unknown)}; known: lenet, simple, rss, import")
    if args.worker or args.rss_worker or args.profile_worker:
        if len(args.thread_counts) != 1:
            ap.error("a worker runs exactly one thread count")
        args.threads = args.thread_counts[0]
    return args


def _child_args(args, n):
    child = ["--threads", str(n), "--repeats", str(args.repeats), "--images", str(args.images),
             "--simple-images", str(args.simple_images), "--simple-json", args.simple_json,
             "--lenet-json", args.lenet_json,
             "--only", ",".join(sorted(args.only)), "--rss-steps", str(args.rss_steps)]
    return child + (["--quick"] if args.quick else [])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if args.rss_worker:
        return rss_worker(args)
    if args.profile_worker:
        return profile_worker(args)

    started = time.perf_counter()
    results, rss, imports, prof = [], [], {}, None
    if args.only & {"lenet", "simple"}:
        for n in args.thread_counts:
            print(f"[{n} thread{'s' if n != 1 else ''}] training epochs ...", file=sys.stderr,
                  flush=True)
            results.append(run_worker(MODULE, ["--worker", *_child_args(args, n)], n))
    if "rss" in args.only:
        for n in args.thread_counts:
            for impl in IMPLS:
                print(f"[{n} thread{'s' if n != 1 else ''}] peak RSS, {impl} ...",
                      file=sys.stderr, flush=True)
                rss.append(run_worker(MODULE, ["--rss-worker", impl, *_child_args(args, n)], n))
    if "import" in args.only:
        runs = 3 if args.quick else IMPORT_RUNS
        print("import times ...", file=sys.stderr, flush=True)
        for module in ("cynet", "torch"):
            imports[module] = import_times(module, runs, args.thread_counts[0])
    if args.profile:
        n = args.thread_counts[0]
        print(f"[{n} thread{'s' if n != 1 else ''}] cProfile of a cynet LeNet-5 epoch ...",
              file=sys.stderr, flush=True)
        prof = run_worker(MODULE, ["--profile-worker", *_child_args(args, n)], n)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": command_line(MODULE, argv), "training": results, "rss": rss,
                       "import": imports, "profile": prof}, f, indent=1)

    sections, all_ok = [header(results, argv, args, args.markdown)], True
    for phase in PHASES:
        if any(phase in r["phases"] for r in results):
            text, ok = phase_table(results, phase, args.repeats, args.markdown)
            sections.append(text)
            all_ok &= ok
    if rss:
        sections.append(rss_table(rss, args.markdown))
    if imports:
        sections.append(import_table(imports, args.markdown))
    if prof:
        sections.append(profile_text(prof, args.markdown))
    return finish(sections, started, all_ok,
                  "A NETWORK DID NOT LEARN during the timed epochs: see the notes")


if __name__ == "__main__":
    sys.exit(main())
