"""cynet.set_num_threads: cynet's kernels and numpy's BLAS follow it."""
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import cynet


def _blas_threads():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize("n", [1, 2])
def test_set_num_threads_sets_kernels_and_blas(n, restore_threads):
    cynet.set_num_threads(n)
    assert cynet.get_num_threads() == n
    blas = _blas_threads()
    assert blas and blas == {n}
    # and the kernels still compute the same thing
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    np.testing.assert_allclose(cynet.functional.conv2d(x, w)[0, 0, 0, 0], x[0, :, :3, :3].sum(),
                               rtol=1e-5)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                        ("2", TypeError)])
def test_set_num_threads_rejects_bad_values(bad, error, restore_threads):
    with pytest.raises(error, match=r"\bn\b"):
        cynet.set_num_threads(bad)


def test_a_bad_cynet_num_threads_warns_and_does_not_break_the_import():
    import os
    import subprocess
    import sys

    env = dict(os.environ, CYNET_NUM_THREADS="abc")
    out = subprocess.run([sys.executable, "-c", "import cynet; print(cynet.get_num_threads())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 1 and "CYNET_NUM_THREADS" in out.stderr


def test_cynet_num_threads_limits_blas_once_a_kernel_runs():
    import os
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, cynet\n"
        "light = 'threadpoolctl' not in sys.modules\n"
        "cynet.functional.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32))\n"
        "from threadpoolctl import threadpool_info\n"
        "blas = {p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}\n"
        "print(light, sorted(blas))\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["CYNET_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "[1]"]


def test_worker_threads_follow_the_callers_errstate(restore_threads):
    # numpy's errstate is per thread: chunks run by pool workers must still obey it
    cynet.set_num_threads(2)
    x = np.ones((8, 1, 30, 30), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    w[0, 0, 0, 0] = np.inf  # inf * 0 (padding) = NaN: "invalid value"
    with np.errstate(invalid="raise"):
        with pytest.raises(FloatingPointError, match="invalid value"):
            cynet.functional.conv2d(x, w, padding=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"):
            y = cynet.functional.conv2d(x, w, padding=1)
    assert np.isnan(y).any()


@pytest.mark.parametrize("n", [1, 3])
def test_small_arrays_stay_on_one_thread(n, policy):
    from cynet.engine import threads_for

    least = policy(num_threads=n).parallel_min_elements
    assert threads_for(0) == threads_for(least - 1) == 1
    assert threads_for(least) == threads_for(10 * least) == n


def test_a_policy_change_is_checked_and_undone(policy):
    from cynet import engine

    before = engine.current()
    with pytest.raises(TypeError, match="num_thread.*did you mean 'num_threads'"):
        policy(num_thread=2)
    with pytest.raises(ValueError, match="num_threads must be >= 1, got 0"):
        policy(num_threads=0)
    with pytest.raises(TypeError, match="col_budget must be int, got 1.5"):
        policy(col_budget=1.5)
    with engine.using(num_threads=before.num_threads + 1, direct_conv=False) as inside:
        assert engine.current() is inside and not inside.direct_conv
    assert engine.current() == before


def test_import_leaves_the_environment_alone_and_openmp_waits_passively():
    import os
    import subprocess
    import sys

    code = ("import os, json; before = dict(os.environ); import cynet; "
            "print(json.dumps(dict(os.environ) == before))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_DISPLAY_ENV"] = "TRUE"  # the OpenMP runtime prints its settings as it loads
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["true"]
    if cynet._build_info.openmp_enabled():
        assert "OMP_WAIT_POLICY = 'PASSIVE'" in out.stderr, out.stderr
    # a user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["true"] and "OMP_WAIT_POLICY = 'ACTIVE'" in out.stderr
