"""The context a training or inference loop runs in."""
from contextlib import contextmanager

from .blas import single_threaded_blas
from .heap import retained_heap
from .policy import current as policy


@contextmanager
def session():
    """Freed memory stays in the heap for the next step (:mod:`.heap`); with several
    threads numpy's BLAS is held at one thread for the whole loop: cynet's layers split
    their work between workers themselves, and switching OpenBLAS's thread count per
    call wakes its threads, which then spin on the cores the next kernel needs (the
    training benchmark's simple.json step)."""
    with retained_heap():
        if policy().num_threads > 1:
            with single_threaded_blas():
                yield
        else:
            yield
