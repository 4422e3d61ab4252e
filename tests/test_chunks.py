"""cynet._chunks.chunk_for and the chunk sizes of a convolution: bounded, and shared
evenly between the threads."""
import itertools

import numpy as np
import pytest

from cynet import functional as F
from cynet._chunks import chunk_for, parallel_matmul
from cynet._geometry import conv_geometry


@pytest.mark.parametrize("n, max_samples, threads", list(itertools.product(
    [1, 2, 3, 7, 64, 65, 256], [1, 2, 3, 23, 100, 1000], [1, 2, 3, 4])))
def test_chunks_stay_within_the_limit_and_split_evenly(n, max_samples, threads):
    chunk = chunk_for(n, max_samples, threads)
    assert 1 <= chunk <= min(n, max_samples)
    starts = list(range(0, n, chunk))
    # the static split (every threads-th chunk per worker): no worker gets much more
    # than its share, e.g. not two of three chunks
    loads = [sum(min(chunk, n - s) for s in starts[i::threads]) for i in range(threads)]
    assert max(loads) <= -(-n // threads) + len(starts) // threads + 1, loads


def test_three_chunks_become_four_on_two_threads():
    # 23 samples would fit, so three chunks would do, but two workers share them 2:1
    assert chunk_for(64, 23, 2) == 16
    assert chunk_for(64, 23, 1) == 22
    assert chunk_for(0, 10, 2) == 1


def conv_chunk(x_shape, w_shape, threads, **kwargs):
    geo = conv_geometry(x_shape, w_shape, **{"stride": 1, "padding": 0, "dilation": 1,
                                             "groups": 1, **kwargs})
    return (geo,) + F._Columns(geo).plan(threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((64, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}),
    ((64, 32, 14, 14), (64, 32, 5, 5), {"padding": 2}),
    ((64, 6, 14, 14), (16, 6, 5, 5), {}),
    ((64, 1, 28, 28), (32, 1, 5, 5), {"padding": 2}),
    ((3, 512, 64, 64), (8, 512, 3, 3), {}),   # one sample is over the budget
])
def test_conv_chunks_keep_the_columns_within_budget(x_shape, w_shape, kwargs, threads):
    geo, chunk, workers = conv_chunk(x_shape, w_shape, threads, **kwargs)
    assert workers == threads
    per_sample = max(geo.C * geo.kh * geo.kw, geo.F) * geo.OH * geo.OW
    assert 1 <= chunk <= geo.N
    assert chunk == 1 or chunk * per_sample <= F.COL_BUDGET


@pytest.mark.parametrize("threads", [1, 2])
def test_a_few_short_filters_get_small_gemm_chunks(threads):
    # LeNet's first layer: 6 x 25 x (chunk * 784) multiply-adds per GEMM
    geo, chunk, workers = conv_chunk((64, 1, 28, 28), (6, 1, 5, 5), threads, padding=2)
    macs = 6 * 25 * chunk * 784
    assert macs <= F.SMALL_GEMM and chunk * 784 >= F.MIN_SMALL_GEMM_COLUMNS
    assert chunk == 8 and workers == 1  # and on one worker, whatever the threads


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m, k, n", [(64, 30, 200), (200, 30, 64), (5, 7, 3), (64, 1, 64)])
@pytest.mark.parametrize("transposed", [False, True], ids=["b", "b_T"])
def test_parallel_matmul_matches_matmul_whichever_side_it_splits(m, k, n, threads, transposed,
                                                                 rng):
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((n, k)).T if transposed else rng.standard_normal((k, n))
    out = np.full((m, n), np.nan)
    got = parallel_matmul(a, b, out, threads, min_part=16, min_macs=1)
    assert got is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
