"""numpy's BLAS threads, through threadpoolctl (imported on first use, not by ``import
cynet``)."""
from contextlib import contextmanager

_controller = None


def _threadpools():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def limit_blas(n):
    """Limit numpy's BLAS to ``n`` threads from now on."""
    _threadpools().limit(limits=n, user_api="blas")


@contextmanager
def single_threaded_blas():
    """numpy's BLAS on one thread inside the block (restored after): when cynet's own
    workers each run a BLAS call, a threaded BLAS would oversubscribe the cores."""
    with _threadpools().limit(limits=1, user_api="blas"):
        yield
