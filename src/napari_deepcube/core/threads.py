"""How many threads a run computes on: torch's, the BLAS and OpenMP pools of numpy, scipy, scikit-learn,
and its own (:func:`in_parts`, numpy's work on a sample shared out in blocks of rows).

Thread pools spin while they wait for work. On a machine other programs keep
busy, a pool as wide as the machine spins against them: a 1600-pixel MUSE cube
took 268 s with two threads beside CPU-bound work where one thread took 21 s
(docs/big-data.md). A run therefore computes on the cores that are free when
it starts, at least one, and at most :data:`MAX_RUN_THREADS`: its operations are
small (batches of 1024 spectra, k-means on a few thousand points), and on a
16-core machine sixteen threads made them slower than four (docs/big-data.md).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

#: How long the machine is watched to see how busy it is (seconds).
_WATCH_SECONDS = 0.1
#: Most threads a run computes on, however many cores are free.
MAX_RUN_THREADS = 4
#: Fewest rows (or columns) a thread of :func:`in_parts` gets: below, starting it costs more than it saves.
MIN_PART = 512

_Result = TypeVar("_Result")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _busy_cores() -> float:
    """Cores other processes keep busy now: /proc/stat over a short watch, else the load average.

    This process's own work in the watch (a viewer drawing while its run
    starts) is not counted: the run shares those cores with itself anyway.
    """
    try:
        first, own_first = _cpu_times(), _own_cpu_time()
        time.sleep(_WATCH_SECONDS)
        second, own_second = _cpu_times(), _own_cpu_time()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:  # no load average on this system
            return 0.0
    total = second[0] - first[0]
    busy = total - (second[1] - first[1]) - (own_second - own_first)
    machine = os.cpu_count() or 1
    return max(0.0, machine * busy / total) if total > 0 else 0.0


def _cpu_times() -> tuple[int, int]:
    """(all, idle) clock ticks of the machine since boot, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # idle + iowait


def _own_cpu_time() -> int:
    """Clock ticks this process has run (user + system), from /proc/self/stat."""
    with open("/proc/self/stat", encoding="ascii") as stat:
        # The command name in parentheses may hold spaces: count the fields after it.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def free_cores() -> int:
    """The cores a run should compute on: those of this process that no other keeps busy, at least one."""
    machine = os.cpu_count() or 1
    return max(1, min(usable_cores(), round(machine - _busy_cores())))


def run_threads(free: int | None = None) -> int:
    """The threads a run computes on: ``free`` cores (default :func:`free_cores`), at most the cap."""
    return min(free_cores() if free is None else free, MAX_RUN_THREADS)


@contextmanager
def computing_on(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` threads in torch and in every BLAS/OpenMP pool; restore them after."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def in_parts(function: Callable[[slice], _Result], n: int, threads: int, align: int = 1) -> list[_Result]:
    """``function`` of consecutive slices that cover ``range(n)``, one per thread, in order.

    numpy's loops release the GIL, so work row by row (or column by column)
    on a sample of hundreds of MB runs on every thread: a run's sample of a
    3681-channel cube is binned and whitened on two cores in about half the
    time. One thread, or too few rows for two, runs it whole here.

    Parameters
    ----------
    function
        Work on the rows (or columns) of one slice; called once for each.
    n
        Rows (or columns) in all.
    threads
        Most threads to share them among; each gets at least :data:`MIN_PART`.
    align
        The slices start at multiples of this, so that work done in blocks
        of it meets the same blocks on any number of threads.

    Returns
    -------
    list
        What ``function`` returned for each slice, first slice first.
    """
    parts = max(1, min(threads, n // MIN_PART))
    edges = align * np.round(np.linspace(0, n / align, parts + 1)).astype(np.int64)
    edges[-1] = n
    slices = [slice(int(start), int(stop)) for start, stop in itertools.pairwise(edges) if stop > start]
    if len(slices) <= 1:
        return [function(slice(0, n))]
    with ThreadPoolExecutor(max_workers=len(slices), thread_name_prefix="parts") as pool:
        return list(pool.map(function, slices))
