"""cynet.engine.heap: freed memory stays in the heap inside training and inference loops."""
import os
import platform
import subprocess
import sys
import threading

import pytest

from cynet.engine import heap as _heap


class FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def fake_libc():
    """A recording C library, and a heap switch that tunes it."""
    libc = FakeLibc()
    libc.retained_heap = _heap.RetainedHeap(libc=lambda: libc)
    return libc


LOOP = [("mallopt", _heap.M_MMAP_THRESHOLD, 32 << 20),
        ("mallopt", _heap.M_TRIM_THRESHOLD, 256 << 20)]
# not glibc's 128 KiB start values: setting them would leave every later large block of
# the process a fresh mapping, since any mallopt switches the adaptive thresholds off
RESTORE = [("mallopt", _heap.M_MMAP_THRESHOLD, 32 << 20),
           ("mallopt", _heap.M_TRIM_THRESHOLD, 64 << 20), ("malloc_trim", 0)]


def test_thresholds_are_raised_once_and_restored_by_the_outermost_exit(fake_libc):
    with fake_libc.retained_heap():
        with fake_libc.retained_heap():
            assert fake_libc.calls == LOOP
        assert fake_libc.calls == LOOP
    assert fake_libc.calls == LOOP + RESTORE
    with pytest.raises(RuntimeError, match="a failing step"):
        with fake_libc.retained_heap():
            raise RuntimeError("a failing step")
    assert fake_libc.calls == (LOOP + RESTORE) * 2


def test_concurrent_loops_share_one_setting(fake_libc):
    inside, leave = threading.Barrier(4), threading.Event()

    def loop():
        with fake_libc.retained_heap():
            inside.wait(timeout=30)
            leave.wait(timeout=30)

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    inside.wait(timeout=30)
    assert fake_libc.calls == LOOP  # set by the first loop only
    leave.set()
    for t in threads:
        t.join(timeout=30)
    assert fake_libc.calls == LOOP + RESTORE


@pytest.mark.parametrize("env", [{"CYNET_MALLOC_TUNING": "0"}, {"MALLOC_TRIM_THRESHOLD_": "0"},
                                 {"MALLOC_ARENA_MAX_": "2"}])
def test_left_alone_when_the_user_says_so_or_tuned_malloc(env):
    # the policy's default, read at import: see it in a fresh process
    code = "import cynet; print(cynet.engine.current().retain_heap)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def test_a_policy_without_heap_retention_tunes_nothing(fake_libc, policy):
    policy(retain_heap=False)
    with fake_libc.retained_heap():
        pass
    assert fake_libc.calls == []


PAGE_FAULTS = """
import resource, numpy as np
from cynet.engine.heap import retained_heap
def faults(n=30):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        a = np.ones(1 << 20, np.float32)  # 4 MiB, freed at once
        b = np.ones(1 << 19, np.float32)
        del a, b
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
faults(3)
with retained_heap():
    faults(3)
    inside = faults()
after = faults()
print(inside, after)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning is glibc-only")
def test_reused_memory_costs_no_page_faults_in_a_loop_nor_after_it():
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MALLOC_") or k == "CYNET_MALLOC_TUNING")}
    out = subprocess.run([sys.executable, "-c", PAGE_FAULTS], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    inside, after = map(int, out.stdout.split())
    # 30 rounds of 6 MiB: ~30-46k faults when every block is mapped afresh; none in the
    # loop, and after it only the first round's (the loop's end returned the memory)
    assert inside < 500 and after < 3000, (inside, after)
