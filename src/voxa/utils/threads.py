"""How many torch threads voxa's long numeric calls use: the cores other processes leave free.

OpenMP threads synchronise at every parallel region, so a thread that shares its core with another
busy process stalls all the others: on a 2-core machine with one core busy, a 2-thread MFCC run
took 3.5x as long as a 1-thread one. voxa's batch entry points (:func:`voxa.features.pipeline.
compute_features`, :meth:`voxa.gmm.GaussianMixture.fit`) therefore run inside
:func:`numeric_threads`, which picks :func:`auto_threads` for the call and restores the previous
setting after it.

Example:
    >>> import torch
    >>> from voxa.utils.threads import numeric_threads
    >>> before = torch.get_num_threads()
    >>> with numeric_threads() as n:
    ...     1 <= n <= (os.cpu_count() or 1)
    True
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# torch's thread count when voxa was imported: a different count later means the user called
# torch.set_num_threads, and then that choice is theirs to keep.
_STARTUP_THREADS = torch.get_num_threads()
_ENV_VARS = ("VOXA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_SAMPLE_S = 0.05  # 5 clock ticks per busy core at USER_HZ = 100: enough to tell busy from idle
_CACHE_S = 5.0  # back-to-back calls (a fit per speaker, say) reuse one measurement
_cache: tuple[float, int] | None = None
_depth = 0  # numeric_threads blocks open in this process


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_ticks() -> tuple[int, int] | None:
    """``(busy ticks of the whole machine, ticks of this process)`` from /proc, or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat", encoding="ascii") as f:
            mine = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]
    return busy, int(mine[11]) + int(mine[12])  # utime + stime


def cpu_snapshot() -> tuple[float, float, float] | None:
    """``(busy CPU seconds of the whole machine, CPU seconds of this process, wall seconds)``
    now, from /proc (None off Linux); two of them give :func:`others_busy_between`."""
    ticks = _cpu_ticks()
    if ticks is None:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return ticks[0] / hz, ticks[1] / hz, time.perf_counter()


def others_busy_between(a: tuple[float, float, float] | None,
                        b: tuple[float, float, float] | None) -> float | None:
    """Cores other processes kept busy on average between two :func:`cpu_snapshot` s."""
    if a is None or b is None:
        return None
    wall = max(b[2] - a[2], 1e-3)
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / wall)


def others_busy(interval: float = _SAMPLE_S) -> float | None:
    """Cores kept busy by other processes over the next ``interval`` seconds (None off Linux).

    This process's own time is subtracted, so its threads never count against themselves (the
    load average does count them, which would make a running fit shrink its own thread count).
    """
    a = cpu_snapshot()
    if a is None:
        return None
    time.sleep(interval)
    return others_busy_between(a, cpu_snapshot())


def free_cores(interval: float = _SAMPLE_S) -> int:
    """Cores not busy with other processes' work, at least 1.

    Other processes' CPU time is sampled over ``interval`` seconds from /proc (Linux); where that
    cannot be read, the 1-minute load average stands for it (it lags by a minute and counts this
    process too, hence only a fallback). A core counts as busy from half a core's worth of work
    on. The answer is cached for 5 s, so back-to-back calls pay for one sample.

    Args:
        interval: Seconds to sample /proc for.

    Returns:
        ``1 <= n <= usable_cores()``.

    Example:
        >>> 1 <= free_cores() <= usable_cores()
        True
    """
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_S:
        return _cache[1]
    cpus = usable_cores()
    busy = others_busy(interval)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    n = max(1, min(cpus, cpus - math.floor(busy + 0.5)))
    _cache = (now, n)
    return n


def user_threads() -> int | None:
    """The thread count the user chose, if any.

    In order: ``VOXA_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment;
    or a call to ``torch.set_num_threads`` after voxa was imported (seen as torch's count differing
    from its count at that import; a call made before importing voxa, or one that sets torch's
    own default again, cannot be told apart from no call, so set ``VOXA_NUM_THREADS`` to be sure).
    ``None`` when the choice is left to voxa.
    """
    for var in _ENV_VARS:
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    n = torch.get_num_threads()
    return n if n != _STARTUP_THREADS else None


def auto_threads() -> int:
    """Threads for a long numeric call: the user's choice (:func:`user_threads`) if they made one,
    else :func:`free_cores`.

    Example:
        >>> auto_threads() >= 1
        True
    """
    n = user_threads()
    return n if n is not None else free_cores()


@contextmanager
def numeric_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` torch threads (default :func:`auto_threads`), then restore.

    Also a decorator (``@numeric_threads()``) for public numeric entry points. Inside another such
    block the default keeps the outer block's choice, so a per-utterance call in a scoring loop does
    not sample the machine again.

    Yields:
        The thread count in force inside the block.
    """
    global _depth
    before = torch.get_num_threads()
    want = int(n) if n else before if _depth else auto_threads()
    if want != before:
        torch.set_num_threads(want)
    _depth += 1
    try:
        yield want
    finally:
        _depth -= 1
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


__all__ = ["auto_threads", "cpu_snapshot", "free_cores", "numeric_threads", "others_busy",
           "others_busy_between", "usable_cores", "user_threads"]
