"""Killed and interrupted runs of the installed ``cynet`` script, resumed exactly.

Real subprocesses, one thread each (``CYNET_NUM_THREADS=1`` and the BLAS/OpenMP
variables), so that runs are bit-reproducible: an uninterrupted run of N_EPOCHS epochs
is the reference; a run SIGKILLed mid-epoch and a run interrupted with SIGINT (Ctrl-C)
are resumed with ``--resume`` and must end with exactly the reference weights. The model
has Dropout, so the layers' random state must be restored too. One epoch takes about a
second; nothing here asserts a duration, and every wait has a generous timeout.
"""
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import time

import numpy as np
import pytest

import cynet
from cli_fixtures import (BUILTIN_TYPES, METRIC_KEYS, cynet_command, definition, epoch_lines,
                          error_lines, load_npz, read_metrics, subprocess_env, write_dataset,
                          write_json)

N_EPOCHS = 4
TIMEOUT = 300  # seconds for any one subprocess; a loaded machine is slow, not stuck

RESUME_MODEL = {
    "input_shape": [1, 20, 20],
    "layers": [
        {"type": "Conv2D", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Conv2D", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "Dropout", "p": 0.3},
        {"type": "Flatten"},
        {"type": "Dense", "out_features": 4},
    ],
    "optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9},
    "training": {"epochs": N_EPOCHS, "batch_size": 32, "seed": 0},
}

# the second-wave training options that draw from the run's RNG or decide from its
# history: augmentation, warm-up, label smoothing and early stopping on a validation split
OPTIONS_MODEL = {**RESUME_MODEL, "training": {
    **RESUME_MODEL["training"], "epochs": 6, "validation_split": 0.2, "warmup_epochs": 1,
    "label_smoothing": 0.1,
    "augment": {"random_crop": {"padding": 2}, "horizontal_flip": True,
                "random_erasing": {"p": 0.5}},
    "early_stopping": {"monitor": "val_loss", "patience": 2, "min_delta": 0.002}}}

CYNET = cynet_command()


def _default_sigint():
    # a child started while SIGINT is ignored (a background job, nohup) would inherit
    # that and Python would then never raise KeyboardInterrupt: restore the default
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cynet_run(*args, **kwargs):
    """``cynet ARGS...`` to completion; returns the CompletedProcess (text)."""
    return subprocess.run(CYNET + [str(a) for a in args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=TIMEOUT, preexec_fn=_default_sigint,
                          **kwargs)


def cynet_start(*args):
    return subprocess.Popen(CYNET + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                            preexec_fn=_default_sigint)


def describe(proc, stdout, stderr):
    return f"exit {proc.returncode}\n--- stdout\n{stdout}--- stderr\n{stderr}"


def wait_for_epochs(proc, run_dir, n):
    """Poll metrics.jsonl until it has ``n`` lines; the process must still be running."""
    deadline = time.monotonic() + TIMEOUT
    path = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before it could be stopped:\n{describe(proc, out, err)}")
        if path.exists() and len(read_metrics(run_dir)) >= n:
            return read_metrics(run_dir)
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    pytest.fail(f"no {n} epoch(s) in {path} after {TIMEOUT} s")


def stop_mid_epoch(proc, run_dir, stop):
    """After the first epoch, wait a fraction of an epoch, then ``stop(proc)``."""
    metrics = wait_for_epochs(proc, run_dir, 1)
    time.sleep(max(0.05, 0.4 * metrics[0]["seconds"]))
    assert proc.poll() is None, "the run finished before it could be stopped"
    stop(proc)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the run did not stop:\n{err}")
    return out, err


def assert_same_weights(expected, actual):
    a, b = load_npz(expected), load_npz(actual)
    assert sorted(a) == sorted(b)
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"arrays that differ from the uninterrupted run: {different}"


def assert_complete_metrics(run_dir, reference_dir):
    metrics = read_metrics(run_dir)
    assert [m["epoch"] for m in metrics] == list(range(1, N_EPOCHS + 1))
    for m in metrics:
        assert METRIC_KEYS <= set(m), m
    reference = read_metrics(reference_dir)
    for key in ("loss", "accuracy", "test_loss", "test_accuracy", "lr"):
        assert [m[key] for m in metrics] == [m[key] for m in reference], key


# --------------------------------------------------------------------------- fixtures


class Setup:
    """The data, the definition ``doc`` and its uninterrupted reference run."""

    def __init__(self, base, doc=RESUME_MODEL, n_train=5000):
        self.base = base
        self.data = write_dataset(base / "data.npz", n_train=n_train, n_test=200, size=20,
                                  n_classes=4, noise_labels=0.2, noise=200, signal=40)
        self.model = write_json(base / "model.json", definition(doc, data=self.data))
        self.reference = base / "reference"
        result = cynet_run("train", self.model, "--out", self.reference)
        assert result.returncode == 0, describe(result, result.stdout, result.stderr)
        self.reference_result = result


@pytest.fixture(scope="module")
def options_setup(tmp_path_factory):
    return Setup(tmp_path_factory.mktemp("resume-options"), OPTIONS_MODEL, n_train=3000)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The data, the definition and the uninterrupted reference run."""
    return Setup(tmp_path_factory.mktemp("resume"))


# --------------------------------------------------------------------------- tests


def test_uninterrupted_run(setup):
    """The reference itself: complete, reproducible output, plain progress lines."""
    result = setup.reference_result
    assert {p.name for p in setup.reference.iterdir()} == {
        "model.json", "weights.npz", "best.npz", "metrics.jsonl", "checkpoint.npz", ".lock"}
    assert [m["epoch"] for m in read_metrics(setup.reference)] == list(range(1, N_EPOCHS + 1))
    # stderr is a pipe, not a terminal: one plain line per epoch, no carriage return
    assert "\r" not in result.stderr
    assert len(epoch_lines(result.stderr)) == N_EPOCHS, result.stderr
    assert re.search(r"test accuracy\s+[\d.]+", result.stdout), result.stdout
    # the weights are a real, trained model
    model = cynet.Model.load(setup.reference / "weights.npz")
    arrays = load_npz(setup.data)
    accuracy = model.evaluate(arrays["x_test"][:, None], arrays["y_test"])["accuracy"]
    assert accuracy > 0.5  # 4 classes, 20% of the labels random


def test_sigkill_mid_epoch_then_resume(setup, tmp_path):
    run_dir = tmp_path / "run"
    proc = cynet_start("train", setup.model, "--out", run_dir)
    stop_mid_epoch(proc, run_dir, lambda p: p.kill())
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "weights.npz").exists(), "the run was not interrupted"
    done = len(read_metrics(run_dir))
    assert 1 <= done < N_EPOCHS

    result = cynet_run("train", setup.model, "--resume", run_dir)
    assert result.returncode == 0, describe(result, result.stdout, result.stderr)
    for name in ("weights.npz", "best.npz"):
        assert_same_weights(setup.reference / name, run_dir / name)
    assert_complete_metrics(run_dir, setup.reference)
    # only the remaining epochs were trained (from the last checkpoint, which is at most
    # one epoch behind metrics.jsonl if the kill fell between writing the two)
    trained = [int(line.split()[1].split("/")[0]) for line in epoch_lines(result.stderr)]
    assert trained and trained == list(range(trained[0], N_EPOCHS + 1)), result.stderr
    assert 2 <= trained[0] <= done + 1, result.stderr


def test_augmented_early_stopped_run_killed_and_resumed_ends_bit_identical(options_setup,
                                                                           tmp_path):
    setup = options_setup
    reference = read_metrics(setup.reference)
    assert all("val_loss" in m and "test_loss" not in m for m in reference)
    assert [m["lr"] for m in reference[:2]] == [0.01, 0.02]  # warm-up, then the base rate
    run_dir = tmp_path / "run"
    proc = cynet_start("train", setup.model, "--out", run_dir)
    stop_mid_epoch(proc, run_dir, lambda p: p.kill())
    assert not (run_dir / "weights.npz").exists(), "the run was not interrupted"
    result = cynet_run("train", setup.model, "--resume", run_dir)
    assert result.returncode == 0, describe(result, result.stdout, result.stderr)
    for name in ("weights.npz", "best.npz"):
        assert_same_weights(setup.reference / name, run_dir / name)
    resumed = read_metrics(run_dir)
    assert len(resumed) == len(reference)  # stopped (or not) after the same epoch
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert [m[key] for m in resumed] == [m[key] for m in reference], key
    stopped = "early stopping after epoch" in setup.reference_result.stderr
    assert stopped == ("early stopping after epoch" in result.stderr)
    assert stopped == (len(reference) < OPTIONS_MODEL["training"]["epochs"])


def test_sigint_mid_epoch_saves_and_resumes(setup, tmp_path):
    run_dir = tmp_path / "run"
    proc = cynet_start("train", setup.model, "--out", run_dir)
    out, err = stop_mid_epoch(proc, run_dir, lambda p: p.send_signal(signal.SIGINT))
    assert proc.returncode == 130, describe(proc, out, err)
    assert "Traceback" not in err
    assert "--resume" in err, err
    assert not (run_dir / "weights.npz").exists()
    arrays = load_npz(run_dir / "checkpoint.npz")  # there, and readable without pickle
    assert arrays
    assert 1 <= len(read_metrics(run_dir)) < N_EPOCHS

    # continue with the command the message suggests
    match = re.search(r"\bcynet (train .*--resume \S+)", err)
    assert match, err
    result = cynet_run(*shlex.split(match.group(1)))
    assert result.returncode == 0, describe(result, result.stdout, result.stderr)
    for name in ("weights.npz", "best.npz"):
        assert_same_weights(setup.reference / name, run_dir / name)
    assert_complete_metrics(run_dir, setup.reference)


def test_progress_bar_on_a_terminal(tmp_path):
    """With stderr a terminal the progress is a bar redrawn with carriage returns."""
    data = write_dataset(tmp_path / "d.npz", n_train=64, n_test=16)
    model = write_json(tmp_path / "m.json", definition(data=data))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(CYNET + ["train", str(model), "--epochs", "2",
                                         "--out", str(tmp_path / "run")],
                                stdout=subprocess.PIPE, stderr=slave, env=subprocess_env(),
                                preexec_fn=_default_sigint)
        os.close(slave)
        slave = None
        chunks = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        proc.communicate(timeout=TIMEOUT)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, terminal
    assert "\r" in terminal, terminal
    assert re.search(r"epoch 2/2", terminal), terminal
    # the bar: images/s, the epoch's running mean loss and the time left
    assert re.search(r"\[[#.]+\] \d+/\d+  loss \d+\.\d{4}  [\d,]+ img/s  \d+s left",
                     terminal), terminal


def test_installed_script_version_and_layers():
    result = cynet_run("--version")
    assert result.returncode == 0, result.stderr
    assert cynet.__version__ in result.stdout
    result = cynet_run("layers")
    assert result.returncode == 0, result.stderr
    for name in BUILTIN_TYPES:
        assert re.search(rf"^\s*{name}\b.*\bcynet\b", result.stdout, re.M), name


@pytest.mark.parametrize("how", ["none", "--debug", "CYNET_DEBUG=1"])
def test_installed_script_debug_traceback(tmp_path, how):
    doc = definition()
    doc["layers"][0]["kernal_size"] = 3
    path = write_json(tmp_path / "bad.json", doc)
    args = ["validate", path] if how != "--debug" else ["--debug", "validate", path]
    env = subprocess_env(**({"CYNET_DEBUG": "1"} if how == "CYNET_DEBUG=1" else {}))
    result = subprocess.run(CYNET + [str(a) for a in args], capture_output=True, text=True,
                            env=env, timeout=TIMEOUT)
    assert result.returncode != 0
    if how == "none":
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(error_lines(result.stderr)) == 1 and "kernal_size" in result.stderr
        assert result.stderr.strip() == error_lines(result.stderr)[0]
    else:
        assert "Traceback" in result.stderr, result.stderr
        assert "kernal_size" in result.stderr
