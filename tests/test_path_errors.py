"""A path the user gives that cannot be used is exit 2 and one line naming it, and no
read can block: FIFOs and devices are refused unread (``cynet._regular``), a too-long
name or a directory cynet may not write is bad usage, never an internal error naming a
temporary file. A disk that fills up during training names the file, exit 1, and says
how to resume; the resumed run equals an uninterrupted one."""
import errno
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

from cynet import _atomic
from cynet._regular import NotARegularFileError, open_regular
from test_cli import assert_user_error, describe, ok, run
from test_rundir_safety import Toy

LONG = "n" * 300  # longer than any file system's NAME_MAX (255)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return Toy(tmp_path_factory.mktemp("paths"))


def run_within(seconds, *args):
    """``run(*args)``, failing the test (instead of hanging it) if it blocks."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", run(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"cynet {' '.join(map(str, args))} blocked for {seconds} s")
    return box["result"]


# --------------------------------------------------------------------------- FIFOs


def test_open_regular_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match=r"pipe is a FIFO \(named pipe\), not a regular"):
        open_regular(fifo)
    with pytest.raises(NotARegularFileError, match="a directory"):
        open_regular(tmp_path)
    (tmp_path / "f").write_bytes(b"abc")
    with open_regular(tmp_path / "f") as f:
        assert f.read() == b"abc"
        assert os.get_blocking(f.fileno())


FIFO_CASES = {
    "train --data": lambda toy, p: ("train", toy.model, "--data", p, "--out", toy.base / "never"),
    "train MODEL": lambda toy, p: ("train", p),
    "validate": lambda toy, p: ("validate", p),
    "evaluate --data": lambda toy, p: ("evaluate", toy.run_dir, "--data", p),
    "evaluate WEIGHTS": lambda toy, p: ("evaluate", p),
    "predict INPUTS": lambda toy, p: ("predict", toy.run_dir, p, "--out", toy.base / "s.npz"),
}


@pytest.mark.parametrize("case", sorted(FIFO_CASES))
@pytest.mark.parametrize("suffix", ["", ".npz", ".json"])
def test_a_fifo_given_to_read_is_refused_without_blocking(toy, tmp_path, case, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    result = run_within(30, *FIFO_CASES[case](toy, fifo))
    assert_user_error(result, 2, [str(fifo), "FIFO"])
    assert not (toy.base / "never").exists()


def test_a_device_given_as_data_is_refused(toy):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    result = run_within(30, "evaluate", toy.run_dir, "--data", "/dev/zero")
    assert_user_error(result, 2, ["/dev/zero"])


def test_idx_files_that_are_fifos_are_not_read(toy, tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        os.mkfifo(tmp_path / name)
    result = run_within(30, "evaluate", toy.run_dir, "--data", tmp_path)
    assert result.exit_code == 2, describe(result)


# --------------------------------------------------------------------------- long names


LONG_NAME_CASES = {
    "validate": lambda toy, long: ("validate", f"{long}.json"),
    "train MODEL": lambda toy, long: ("train", f"{long}.json"),
    "train --out": lambda toy, long: ("train", toy.model, "--out", long),
    "train --out below": lambda toy, long: ("train", toy.model, "--out", long / "run"),
    "train --data": lambda toy, long: ("train", toy.model, "--data", f"{long}.npz", "--out",
                                       long.parent / "r"),
    "train --resume": lambda toy, long: ("train", toy.model, "--resume", long),
    "evaluate RUN": lambda toy, long: ("evaluate", long),
    "evaluate --data": lambda toy, long: ("evaluate", toy.run_dir, "--data", f"{long}.npz"),
    "predict INPUTS": lambda toy, long: ("predict", toy.run_dir, f"{long}.npz", "--out",
                                         long.parent / "s.npz"),
    "predict --out": lambda toy, long: ("predict", toy.run_dir, toy.inputs, "--out",
                                        f"{long}.npz"),
    "plot RUN": lambda toy, long: ("plot", long),
}


@pytest.mark.parametrize("case", sorted(LONG_NAME_CASES))
def test_a_300_character_file_name_is_bad_usage(toy, tmp_path, case):
    line = assert_user_error(run(*LONG_NAME_CASES[case](toy, tmp_path / LONG)), 2, [LONG[:50]])
    assert ".tmp-" not in line


# --------------------------------------------------------------------------- read-only


@pytest.fixture
def read_only(tmp_path):
    """Makes a path read-only to this process (root ignores permission bits: the
    immutable attribute is used then, where the file system has it)."""
    made = []

    def make(path):
        if os.geteuid() != 0:
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
        elif shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: nothing is read-only")
        made.append(path)
        return path

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


@pytest.fixture
def made_dir(tmp_path):
    path = tmp_path / "ro"
    path.mkdir()
    return path


def test_writing_into_a_read_only_directory_names_the_file(toy, made_dir, read_only):
    """``train --out`` an existing read-only directory, ``predict --out`` a file in one."""
    read_only(made_dir)
    for args, name in [(("predict", toy.run_dir, toy.inputs, "--out", made_dir / "s.npz"),
                        "s.npz"),
                       (("train", toy.model, "--out", made_dir), "ro")]:
        line = assert_user_error(run(*args), 2, [name])
        assert ".tmp-" not in line
    assert list(made_dir.iterdir()) == []


def test_resuming_a_read_only_run_is_bad_usage_and_says_how_to_continue(toy, tmp_path,
                                                                         read_only):
    run_dir = tmp_path / "run"
    shutil.copytree(toy.run_dir, run_dir)
    read_only(run_dir)
    line = assert_user_error(run("train", toy.model, "--resume", run_dir, "--epochs", "4"), 2,
                             [str(run_dir)])
    assert ".tmp-" not in line


def test_a_read_only_file_is_not_replaced(toy, tmp_path, read_only):
    target = tmp_path / "scores.npz"
    target.write_bytes(b"keep")
    read_only(target)
    assert_user_error(run("predict", toy.run_dir, toy.inputs, "--out", target), 2,
                      [str(target)])
    assert target.read_bytes() == b"keep"


def test_atomic_write_errors_name_the_file_not_the_temporary(tmp_path, monkeypatch):
    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        _atomic.atomic_write(tmp_path / "out.npz", full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "out.npz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- disk full


def _fill_disk_at(monkeypatch, name, call):
    """Make the ``call``-th atomic write of a file called ``name`` fail as a full disk."""
    real, seen = _atomic.atomic_write, {"n": 0}

    def atomic_write(path, write, binary=True):
        if os.path.basename(os.fspath(path)) == name:
            seen["n"] += 1
            if seen["n"] == call:
                def fill(f):
                    f.write(b"partial")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real(path, fill, binary)
        return real(path, write, binary)

    monkeypatch.setattr(_atomic, "atomic_write", atomic_write)
    import cynet.rundir
    import cynet.weights
    for module in (cynet.rundir, cynet.weights):
        if hasattr(module, "atomic_write"):
            monkeypatch.setattr(module, "atomic_write", atomic_write)


def test_a_full_disk_names_the_file_and_says_how_to_resume(toy, tmp_path, monkeypatch):
    out = tmp_path / "run"
    # the checkpoint after epoch 2 (the first is written before epoch 1)
    _fill_disk_at(monkeypatch, "checkpoint.npz", 3)
    line = assert_user_error(run("train", toy.model, "--out", out), 1,
                             [str(out / "checkpoint.npz"), "No space left on device",
                              "the checkpoint after epoch 1 is saved", "free some space",
                              f"--resume {out}"])
    assert "internal error" not in line
    monkeypatch.undo()
    ok(run("train", toy.model, "--resume", out))
    a, b = np.load(out / "weights.npz"), np.load(toy.run_dir / "weights.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


def test_a_full_disk_before_the_first_checkpoint_says_to_start_again(toy, tmp_path,
                                                                     monkeypatch):
    out = tmp_path / "run"
    _fill_disk_at(monkeypatch, "checkpoint.npz", 1)
    assert_user_error(run("train", toy.model, "--out", out), 1,
                      ["No space left on device", "nothing to resume", f"--out {out}"])
    monkeypatch.undo()
    ok(run("train", toy.model, "--out", out))
