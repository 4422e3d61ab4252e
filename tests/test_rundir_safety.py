"""What cynet writes never replaces what it should not, and a run directory stays whole.

- atomic replacement (``cynet._atomic``) replaces regular files only: a FIFO, a device or
  a symlink to one is refused (``predict --out``, ``plot --out``: exit 2, naming it); a
  symlink to a regular file is written through, the link stays; a replaced file keeps its
  permissions; the process umask is neither read nor changed; the directory is fsynced;
- one process at a time on a run directory (an exclusive ``flock`` on ``DIR/.lock``, the
  holder's pid in it), tested with real processes;
- the checkpoint is the source of truth: ``--resume`` rewrites ``metrics.jsonl`` from it
  and removes leftover temporary files; Ctrl-C before the first checkpoint leaves a
  directory that ``--out`` starts again, and says so.
"""
import os
import re
import shlex
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from cynet import _atomic
from cynet._atomic import NotARegularFileError, atomic_write
from cli_fixtures import (banded_images, cynet_command, definition, error_lines, load_npz,
                          read_metrics, subprocess_env, write_dataset, write_json)
from test_cli import describe, ok, run

TIMEOUT = 300
ROOT = Path(__file__).resolve().parent.parent




def refused(result, code, *needles):
    """Exit ``code`` with exactly one ``Error:`` line holding every needle, no traceback."""
    assert result.exit_code == code, describe(result)
    assert "Traceback" not in result.output, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, describe(result)
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


class Toy:
    def __init__(self, base):
        self.base = base
        self.data = write_dataset(base / "toy.npz", n_train=64, n_test=32)
        self.model = write_json(base / "toy.json", definition(data=self.data))
        self.run_dir = base / "toy-run"
        ok(run("train", self.model, "--out", self.run_dir))
        self.inputs = base / "images.npz"
        np.savez(self.inputs, x=banded_images(8, seed=5)[0])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return Toy(tmp_path_factory.mktemp("safety"))


# --------------------------------------------------------------------------- atomic writes


def _write(path, data=b"new"):
    atomic_write(path, lambda f: f.write(data))


def test_predict_refuses_a_fifo_as_out_and_leaves_it(toy, tmp_path):
    fifo = tmp_path / "scores.npz"
    os.mkfifo(fifo)
    refused(run("predict", toy.run_dir, toy.inputs, "--out", fifo), 2, str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]  # no temporaries


def test_predict_refuses_a_symlink_to_a_device_and_leaves_both(toy, tmp_path):
    link = tmp_path / "scores.npz"
    link.symlink_to(os.devnull)
    refused(run("predict", toy.run_dir, toy.inputs, "--out", link), 2, str(link),
            "character device")
    assert os.path.islink(link) and os.readlink(link) == os.devnull
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_plot_refuses_a_fifo_as_out(toy, tmp_path):
    pytest.importorskip("matplotlib")
    fifo = tmp_path / "curves.png"
    os.mkfifo(fifo)
    refused(run("plot", toy.run_dir, "--out", fifo), 2, str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_symlink_to_a_regular_file_is_written_through(toy, tmp_path):
    target = tmp_path / "real" / "scores.npz"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    ok(run("predict", toy.run_dir, toy.inputs, "--out", link))
    assert os.path.islink(link) and Path(os.readlink(link)) == target
    assert load_npz(target)["scores"].shape == (8, 3)
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.npz"]


def test_a_dangling_symlink_is_refused(tmp_path):
    link = tmp_path / "out.npz"
    link.symlink_to(tmp_path / "nowhere" / "x.npz")
    with pytest.raises(NotARegularFileError, match="does not exist"):
        _write(link)
    assert os.path.islink(link)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "private.npz"
    path.write_bytes(b"old")
    path.chmod(0o600)
    _write(path)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_files_follow_the_current_umask_which_is_never_changed(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        _write(tmp_path / "a")  # whatever was read once must not stick
        os.umask(0o077)
        calls = []
        real_umask = os.umask
        monkeypatch.setattr(_atomic, "_file_mode", None, raising=False)
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
        _write(tmp_path / "b")
        monkeypatch.undo()
        assert calls == [], "atomic_write changed the process umask (racing other threads)"
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_the_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync, real_replace = os.fsync, os.replace
    renamed = []

    def fsync(fd):
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), bool(renamed)))
        return real_fsync(fd)

    def replace(a, b):
        renamed.append(b)
        return real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _write(tmp_path / "x.npz")
    assert (False, False) in synced, "the file's data was not fsynced before the rename"
    assert (True, True) in synced, "the directory was not fsynced after the rename"


# --------------------------------------------------------------------------- one process per run

# the protocol of cynet.rundir: an exclusive flock on DIR/.lock, which holds the pid
HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\\n" % os.getpid())
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin (or kills us)
""")


class Holder:
    """A separate process holding the lock of ``run_dir``."""

    def __init__(self, run_dir):
        env = subprocess_env(PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()  # blocks until the lock is held: no timing
        assert line == "locked\n", (line, self.proc.communicate(timeout=TIMEOUT))

    def release(self):
        self.proc.communicate(input="", timeout=TIMEOUT)
        assert self.proc.returncode == 0

    def kill(self):
        self.proc.kill()
        self.proc.communicate(timeout=TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill()


def _partial_run(toy, tmp_path, epochs=2):
    run_dir = tmp_path / "run"
    ok(run("train", toy.model, "--out", run_dir, "--epochs", epochs))
    (run_dir / "weights.npz").unlink()  # as if killed before the end
    return run_dir


def test_resume_of_a_run_another_process_holds_is_refused_naming_its_pid(toy, tmp_path):
    run_dir = _partial_run(toy, tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != ".lock"}
    with Holder(run_dir) as holder:
        assert (run_dir / ".lock").read_text().strip() == str(holder.proc.pid)
        refused(run("train", toy.model, "--resume", run_dir), 2, str(run_dir),
                f"pid {holder.proc.pid}", "in use")
        after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != ".lock"}
        assert after == before, "the refused run touched the directory"
        holder.release()
    ok(run("train", toy.model, "--resume", run_dir))
    assert [m["epoch"] for m in read_metrics(run_dir)] == [1, 2, 3]


def test_out_into_a_directory_another_process_holds_is_refused(toy, tmp_path):
    run_dir = tmp_path / "new"
    run_dir.mkdir()
    with Holder(run_dir) as holder:
        refused(run("train", toy.model, "--out", run_dir), 2, str(run_dir),
                f"pid {holder.proc.pid}")
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]


def test_a_killed_holder_leaves_no_stale_lock(toy, tmp_path):
    run_dir = _partial_run(toy, tmp_path)
    with Holder(run_dir) as holder:
        holder.kill()
    assert (run_dir / ".lock").exists()  # the file stays; its lock went with the process
    ok(run("train", toy.model, "--resume", run_dir))
    assert (run_dir / "weights.npz").exists()


def test_two_real_cynet_processes_on_one_run(toy, tmp_path):
    """A real ``cynet train --resume`` subprocess is refused while the directory is held."""
    run_dir = _partial_run(toy, tmp_path)
    env = subprocess_env(PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with Holder(run_dir) as holder:
        result = subprocess.run([sys.executable, "-m", "cynet.cli", "train", str(toy.model),
                                 "--resume", str(run_dir)], capture_output=True, text=True,
                                env=env, timeout=TIMEOUT)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        (line,) = error_lines(result.stderr)
        assert f"pid {holder.proc.pid}" in line, line


def test_the_lock_is_cynets_own(tmp_path):
    """RunDir.lock takes the lock the tests' holder takes: the second one is refused."""
    from cynet.rundir import RunDir, RunDirError

    first = RunDir(tmp_path).lock()
    try:
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            RunDir(tmp_path).lock()
    finally:
        first.unlock()
    RunDir(tmp_path).lock().unlock()


# --------------------------------------------------------------------------- the checkpoint rules


def test_resume_restores_the_metrics_lost_after_the_last_checkpoint(toy, tmp_path):
    """Killed after the last checkpoint's rename, before metrics.jsonl was written."""
    run_dir = tmp_path / "run"
    ok(run("train", toy.model, "--out", run_dir))
    complete, weights = read_metrics(run_dir), load_npz(run_dir / "weights.npz")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "metrics.jsonl").write_text("".join(lines[:-1]))
    (run_dir / "weights.npz").unlink()
    ok(run("train", toy.model, "--resume", run_dir))
    assert read_metrics(run_dir) == complete
    resumed = load_npz(run_dir / "weights.npz")
    assert all(np.array_equal(weights[k], resumed[k]) for k in weights)


def test_resume_removes_leftover_temporary_files(toy, tmp_path):
    run_dir = _partial_run(toy, tmp_path)
    for name in (".tmp-k1ll3d.npz", ".tmp-0ld.jsonl", ".tmp-m0del.json"):
        (run_dir / name).write_bytes(b"half a file")
    (run_dir / ".tmp-plot.png").write_bytes(b"a plot being written")  # not the run's
    ok(run("train", toy.model, "--resume", run_dir))
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".lock", ".tmp-plot.png", "best.npz", "checkpoint.npz", "metrics.jsonl", "model.json",
        "weights.npz"]


def _interrupt_checkpoint(monkeypatch, after_rename):
    """Ctrl-C while the first checkpoint is written: mid-write, or just after its rename."""
    import cynet.weights

    real = cynet.weights.atomic_savez

    def savez(path, arrays):
        if Path(path).name != "checkpoint.npz":
            return real(path, arrays)
        if after_rename:
            real(path, arrays)
            raise KeyboardInterrupt

        def half(f):
            f.write(b"PK\x03\x04 half a checkpoint")
            raise KeyboardInterrupt

        atomic_write(path, half)

    monkeypatch.setattr(cynet.weights, "atomic_savez", savez)


def test_ctrl_c_during_the_first_checkpoint_leaves_a_restartable_directory(toy, tmp_path,
                                                                             monkeypatch):
    run_dir = tmp_path / "run"
    _interrupt_checkpoint(monkeypatch, after_rename=False)
    result = run("train", toy.model, "--out", run_dir, "--epochs", 2)
    monkeypatch.undo()
    assert result.exit_code == 130, describe(result)
    assert "Traceback" not in result.output
    assert "before the first checkpoint" in result.stderr, result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "model.json"]
    refused(run("train", toy.model, "--resume", run_dir), 2, "before its first checkpoint",
            f"--out {run_dir}")
    match = re.search(r"\bcynet (train .*--out \S+)", result.stderr)
    assert match, result.stderr
    ok(run(*shlex.split(match.group(1))))
    assert [m["epoch"] for m in read_metrics(run_dir)] == [1, 2]


def test_ctrl_c_just_after_the_first_checkpoint_is_resumable(toy, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    _interrupt_checkpoint(monkeypatch, after_rename=True)
    result = run("train", toy.model, "--out", run_dir, "--epochs", 2)
    monkeypatch.undo()
    assert result.exit_code == 130, describe(result)
    assert "the checkpoint after epoch 0" in result.stderr and "--resume" in result.stderr
    ok(run("train", toy.model, "--resume", run_dir, "--epochs", 2))
    assert [m["epoch"] for m in read_metrics(run_dir)] == [1, 2]


# --------------------------------------------------------------------------- own files


@pytest.mark.parametrize("name", ["weights.npz", "checkpoint.npz", "metrics.jsonl"])
def test_predict_and_plot_never_write_over_a_runs_files(toy, tmp_path, name):
    run_dir = tmp_path / "run"
    ok(run("train", toy.model, "--out", run_dir, "--epochs", 1))
    before = (run_dir / name).read_bytes()
    refused(run("predict", run_dir, toy.inputs, "--out", run_dir / name), 2, name)
    if name == "weights.npz":  # the weights file given directly
        refused(run("predict", run_dir / name, toy.inputs, "--out", run_dir / name), 2, name)
    refused(run("plot", run_dir, "--out", run_dir / name), 2, name)
    assert (run_dir / name).read_bytes() == before


def test_predict_never_writes_over_its_input(toy, tmp_path):
    inputs = tmp_path / "in.npz"
    inputs.write_bytes(toy.inputs.read_bytes())
    refused(run("predict", toy.run_dir, inputs, "--out", inputs), 2, str(inputs))
    assert inputs.read_bytes() == toy.inputs.read_bytes()


def test_train_out_never_writes_over_the_definition_it_trains(toy, tmp_path):
    here = tmp_path / "project"
    here.mkdir()
    model = here / "model.json"
    model.write_bytes(toy.model.read_bytes())
    refused(run("train", model, "--out", here), 2, str(model))
    assert model.read_bytes() == toy.model.read_bytes()
    assert sorted(p.name for p in here.iterdir()) == ["model.json"]


def test_build_mini_replaces_its_output_atomically(tmp_path, monkeypatch):
    """A build that fails (or is killed) half-way leaves the previous packaged file."""
    from cynet.datasets import build_mini

    out = tmp_path / "mini.npz"
    np.savez(out, x_train=np.zeros((1, 2, 2), np.uint8))
    before = out.read_bytes()
    monkeypatch.setattr(build_mini, "build", lambda source: {"x_train": np.ones(3, np.uint8)})

    def half(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", half)
    with pytest.raises(KeyboardInterrupt):
        build_mini.main(["--source", str(tmp_path), "--out", str(out)])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.npz"]


def test_a_target_that_becomes_a_fifo_while_written_is_not_replaced(tmp_path):
    path = tmp_path / "out.npz"

    def write(f):
        f.write(b"data")
        os.mkfifo(path)  # someone puts a FIFO there meanwhile

    with pytest.raises(NotARegularFileError, match="FIFO"):
        atomic_write(path, write)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
