"""What training a network needs in memory, and whether this machine has it.

The estimate is a floor, not a forecast: the parameters, their gradients, the optimizer's
arrays, and for one batch the activations the forward keeps for the backward plus the
two largest gradients the backward holds at once. Scratch (im2col columns, the retained
heap) and Python's own memory come on top, so a run refused here could never have fit.
"""
import math
import os

_FLOAT32 = 4


class InsufficientMemoryError(ValueError, MemoryError):
    """Training clearly needs more memory than the machine has available. A ValueError
    (an argument such as ``batch_size`` or a layer size is too large for this machine)
    and a MemoryError, as NumPy's own allocation failure would be."""


def _meminfo():
    """``/proc/meminfo`` in bytes, by field name ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return fields


def _cgroup_room():
    """Bytes left under this process's cgroup (v2) memory limit, or None without one."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            paths = [line.rstrip("\n").split(":", 2)[2] for line in f if line.startswith("0::")]
    except (OSError, IndexError):
        return None
    for path in paths:
        base = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
        try:
            with open(os.path.join(base, "memory.max"), encoding="ascii") as f:
                limit = f.read().strip()
            with open(os.path.join(base, "memory.current"), encoding="ascii") as f:
                current = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit():
            return max(0, int(limit) - current)
    return None


def available():
    """Bytes this process can still get: free RAM and swap, within a cgroup limit if
    there is one; None where the system does not say."""
    info = _meminfo()
    free = None
    if "MemAvailable" in info:
        free = info["MemAvailable"] + info.get("SwapFree", 0)
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    room = _cgroup_room()
    if room is not None:
        free = room if free is None else min(free, room)
    return free


def _nbytes(arrays):
    return sum(int(a.nbytes) for a in arrays)


def _held(arrays):
    """Bytes of ``arrays`` that are real allocations: a shape-only build's stand-ins
    (broadcast from one element) hold none, and a 0-d number is not counted."""
    return sum(int(a.nbytes) for a in arrays if a.ndim and 0 not in a.strides)


def model_need(network):
    """``{part: bytes}`` that building ``network`` allocates: its parameters and buffers,
    and a gradient for each parameter."""
    param_bytes = _nbytes(network.parameters().values())
    return {"parameters": param_bytes + _nbytes(network.buffers().values()),
            "gradients": param_bytes}


def training_need(network, input_shape, batch_size, optimizer):
    """``{part: bytes}`` that training ``network`` with ``optimizer`` on batches of
    ``batch_size`` samples of ``input_shape`` needs at the least."""
    need = model_need(network)
    sizes = [math.prod(input_shape)] + [math.prod(layer.output_shape or ()) for layer in
                                        network.layers]
    need["optimizer state"] = need["gradients"] * optimizer.arrays_per_parameter()
    need[f"activations of a batch of {batch_size}"] = (
        batch_size * _FLOAT32 * (sum(sizes) + 2 * max(sizes)))
    return need


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""  # not reached


def require(what, need, held=0, advice="", free=None):
    """Raise InsufficientMemoryError when ``need`` (``{part: bytes}``) clearly exceeds
    what is available (``free``, default ``available()``) plus the ``held`` bytes that
    are already part of it, naming every part."""
    free = available() if free is None else free
    total = sum(need.values())
    if free is None or total <= free + held:
        return
    parts = ", ".join(f"{name} {_size(n)}" for name, n in need.items())
    raise InsufficientMemoryError(
        f"{what} needs at least {_size(total)} of memory ({parts}), but this machine has "
        f"{_size(free + held)} available{advice}")


def check_training(network, input_shape, batch_size, optimizer, free=None):
    """Refuse (InsufficientMemoryError) training that clearly cannot fit in memory; what
    the network and the optimizer already hold counts as theirs."""
    held = (_held(network.parameters().values()) + _held(network.buffers().values())
            + _held(network.gradients().values()) + _held(optimizer.state_dict().values()))
    require("training", training_need(network, input_shape, batch_size, optimizer), held,
            "; use a smaller batch size (training.batch_size, --batch-size) or smaller layers", free)
