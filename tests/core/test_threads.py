"""A run computes on the cores other programs leave free."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from threadpoolctl import threadpool_info

from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.pipeline import segment_steps
from napari_deepcube.core.synthetic import make_painting
from napari_deepcube.core.threads import (
    MAX_RUN_THREADS,
    MIN_PART,
    _busy_cores,
    computing_on,
    free_cores,
    in_parts,
    run_threads,
    usable_cores,
)


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Every core kept busy by another process, as when a user runs other jobs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(usable_cores() + 1)
    ]
    time.sleep(0.5)
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_busy_machine_leaves_one_core(busy_machine: None) -> None:
    assert free_cores() == 1


def test_a_run_takes_the_free_cores_up_to_its_most() -> None:
    assert run_threads(1) == 1
    assert run_threads(MAX_RUN_THREADS) == MAX_RUN_THREADS
    assert run_threads(16) == MAX_RUN_THREADS < 16


def test_this_processs_own_work_is_not_other_programs_load() -> None:
    """A viewer drawing in this process while its run starts leaves the run its cores."""
    baseline = _busy_cores()
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        with_own_work = _busy_cores()
    finally:
        stop.set()
        spinner.join()
    assert with_own_work < baseline + 0.5  # one core's work, were it counted


def test_the_thread_pools_follow_and_come_back() -> None:
    before = torch.get_num_threads()
    with computing_on(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before


def test_a_run_beside_busy_programs_computes_on_one_thread(busy_machine: None) -> None:
    cube = make_painting(16, 16, 64, seed=0).cube
    before = torch.get_num_threads()
    steps = segment_steps(cube, SegmentConfig(epochs=1, n_train=200, k=2))
    threads = {torch.get_num_threads() for _ in steps}
    assert threads == {1}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("n", "threads", "parts"), [(10 * MIN_PART + 3, 3, 3), (2 * MIN_PART - 1, 4, 1), (0, 2, 1)]
)
def test_work_in_parts_covers_every_row_once_in_order_on_its_threads(
    n: int, threads: int, parts: int
) -> None:
    ran_on: list[int] = []
    started = threading.Barrier(parts, timeout=10)

    def part(rows: slice) -> range:
        ran_on.append(threading.get_ident())
        started.wait()  # every part runs at once: one thread each
        return range(n)[rows]

    covered = in_parts(part, n, threads)
    assert len(covered) == parts and len(set(ran_on)) == parts
    assert [row for block in covered for row in block] == list(range(n))
