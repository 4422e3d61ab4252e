"""cynet.engine.workers: how work is split between threads, as properties."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from cynet import engine
from cynet._geometry import conv_geometry
from cynet.engine.conv import Columns
from cynet.engine.workers import chunk_for, matmul


@given(n=st.integers(1, 600), max_samples=st.integers(1, 1000), threads=st.integers(1, 8))
def test_chunks_stay_within_the_limit_and_split_evenly(n, max_samples, threads):
    chunk = chunk_for(n, max_samples, threads)
    assert 1 <= chunk <= min(n, max_samples)
    starts = list(range(0, n, chunk))
    # the static split (every threads-th chunk per worker) gives no worker more than an
    # even share plus one sample per chunk it runs (3 chunks of 22 on 2 workers would
    # give one of them 42 of 64 samples)
    loads = [sum(min(chunk, n - s) for s in starts[i::threads]) for i in range(threads)]
    assert max(loads) <= -(-n // threads) + -(-len(starts) // threads), loads


@given(n=st.integers(1, 256), c=st.integers(1, 64), hw=st.integers(1, 40),
       f=st.integers(1, 128), k=st.integers(1, 5), threads=st.integers(1, 4))
def test_conv_chunks_keep_the_columns_within_budget(n, c, hw, f, k, threads):
    k = min(k, hw)
    geo = conv_geometry((n, c, hw, hw), (f, c, k, k), 1, 0, 1, 1)
    with engine.using(num_threads=threads) as p:
        chunk, workers = Columns(geo).plan(p)
    per_sample = max(c * k * k, f) * geo.OH * geo.OW
    assert 1 <= chunk <= n and workers in (1, threads)
    assert chunk == 1 or chunk * per_sample <= p.col_budget


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m, k, n", [(64, 30, 200), (200, 30, 64), (5, 7, 3), (64, 1, 64)])
@pytest.mark.parametrize("transposed", [False, True], ids=["b", "b_T"])
def test_parallel_matmul_matches_matmul_whichever_side_it_splits(m, k, n, threads, transposed,
                                                                 rng, policy):
    policy(num_threads=threads, matmul_min_part=16, matmul_min_macs=1)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((n, k)).T if transposed else rng.standard_normal((k, n))
    out = np.full((m, n), np.nan)
    got = matmul(a, b, out)
    assert got is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
