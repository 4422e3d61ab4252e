"""cynet._chunks.chunk_for: chunks within the budget, shared evenly between the threads."""
import itertools

import pytest

from cynet._chunks import chunk_for


@pytest.mark.parametrize("n, per_sample, budget, threads", list(itertools.product(
    [1, 2, 3, 7, 64, 65, 256], [1, 100, 22400, 157000, 600000], [512 * 1024], [1, 2, 3, 4])))
def test_chunks_fit_the_budget_and_split_evenly(n, per_sample, budget, threads):
    chunk = chunk_for(n, per_sample, budget, threads)
    assert 1 <= chunk <= n
    starts = list(range(0, n, chunk))
    if per_sample <= budget:
        assert chunk * per_sample <= budget
    # the static split (every threads-th chunk per worker): no worker gets much more
    # than its share, e.g. not two of three chunks
    loads = [sum(min(chunk, n - s) for s in starts[i::threads]) for i in range(threads)]
    assert max(loads) <= -(-n // threads) + len(starts) // threads + 1, loads


def test_lenet_conv1_on_two_threads_gets_four_equal_chunks():
    # 64 samples of 25 x 28 x 32 column values: 23 fit the budget, so three chunks would
    # do, but two workers then share them 2:1
    assert chunk_for(64, 25 * 28 * 32, 512 * 1024, 2) == 16
    assert chunk_for(64, 25 * 28 * 32, 512 * 1024, 1) == 22
    assert chunk_for(0, 10, 100, 2) == 1
