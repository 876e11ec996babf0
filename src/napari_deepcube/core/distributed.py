"""The pass over every pixel on a dask.distributed cluster.

:func:`~napari_deepcube.core.pipeline.segment_steps` does its work in two
parts. Sampling pixels, fitting the feature transform, training the
autoencoder, choosing k and fitting the mixture all use a sample of at most
a few tens of thousands of pixels and stay on the calling machine. The pass
over every pixel (embed, assign to a cluster, add up per-cluster spectra) is
a pure map over bands of rows, :func:`~napari_deepcube.core.pipeline.segment_block`;
:func:`dask_block_map` runs that map on a dask cluster.

The fitted model is sent to every worker once. Each task reads its band from
the cube's file itself when the cube is read lazily from a file every worker
can see (memory-mapped .npy/ENVI/TIFF/FITS, zarr); otherwise (a cube in
memory, HDF5, whose handles cannot travel) the calling process reads each
band and sends it with the task. A cube's per-voxel variances (a FITS STAT)
travel the same way as its spectra. Tasks cut their band into the same blocks
as the single-process pass and return one result per block, which are
yielded in row order: the result is identical to the single-process run.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .cube import DEFAULT_BLOCK_PIXELS, Datacube
from .errors import InputError
from .pipeline import BlockMap, BlockResult, segment_block
from .segmentation import FittedModel

#: Seconds to wait for a scheduler at an address before giving up.
CONNECT_TIMEOUT_S = 10
#: Bytes of float32 spectra in one task's band: large enough that a task
#: outweighs its scheduling cost, small enough for a worker's memory.
BAND_BYTES = 64 * 1024**2
#: Tasks in flight per worker thread: keeps workers busy while bounding the
#: results (and, for an in-memory cube, the bands) held at once.
TASKS_PER_THREAD = 2
#: A lazy array is sent to the workers (who then read their bands from its
#: file) only if it pickles to less than this, i.e. holds no data itself.
_MAX_REFERENCE_BYTES = 1024**2


@dataclass(frozen=True)
class _Source:
    """A lazy array shipped to the workers, wrapped so that dask sends it as an object.

    (A bare dask array passed to ``Client.submit`` would be computed first.)
    """

    data: Any

    def band(self, rows: slice) -> np.ndarray:
        part = self.data[rows]
        if hasattr(part, "compute"):
            # A dask array: read it here, in this task, not as tasks on the cluster.
            part = part.compute(scheduler="synchronous")
        return np.asarray(part, dtype=np.float32)


#: A scheduler address: an optional protocol, a host name or IP address, and a port.
_ADDRESS = re.compile(r"((tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}")


def parse_scheduler(scheduler: str) -> tuple[str, int | None]:
    """``"local"``, ``"local:N"`` or an address -> (``"local"`` or the address, N).

    Raises
    ------
    InputError
        For ``local:`` followed by anything but a positive whole number.
    """
    text = scheduler.strip()
    if text == "local":
        return "local", None
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise InputError(
                f"--scheduler {scheduler!r}: after 'local:' give the number of worker processes, e.g. local:4"
            )
        return "local", int(count)
    if not _ADDRESS.fullmatch(text):
        raise InputError(
            f"--scheduler {scheduler!r} is neither local, local:N nor a scheduler address such as "
            "tcp://10.0.0.5:8786; give one of these"
        )
    return text, None


def _connect(scheduler: str) -> tuple[Any, Any]:
    """A distributed Client for ``scheduler`` and the LocalCluster made for it (or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError(
            "--scheduler needs dask.distributed; install it with `pip install dask[distributed]`"
        ) from exc
    where, n_workers = parse_scheduler(scheduler)
    # Never the default scheduler: dask arrays computed meanwhile in this process
    # (an HDF5 band read here) must not turn into tasks on the cluster.
    if where == "local":
        # One single-threaded process per core: tasks sharing a process would contend
        # for the GIL and for torch's and numpy's thread pools.
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            # Any free port: dask's default 8787 is taken by any other cluster on the machine,
            # and the cluster then fails to start.
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        return Client(cluster, set_as_default=False), cluster
    try:
        return Client(where, timeout=CONNECT_TIMEOUT_S, set_as_default=False), None
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"could not reach a dask scheduler at {where!r} ({exc}); start one (`dask scheduler`, or a "
            "dask-jobqueue cluster) and pass its address, e.g. tcp://10.0.0.5:8786, or use local:N"
        ) from exc


def _shippable(data: Any) -> bool:
    """True when ``data`` is a lazy array that pickles small (a file reference, not values)."""
    if isinstance(data, np.ndarray):  # in memory, or a memory map that would pickle its values
        return False
    buffers: list[pickle.PickleBuffer] = []
    try:
        # Out-of-band buffers are counted, not copied: a lazy array holding a big
        # in-memory array is found without serialising it.
        payload = pickle.dumps(data, protocol=5, buffer_callback=buffers.append)
    except Exception:  # h5py datasets and other open handles refuse pickling in many ways
        return False
    return len(payload) + sum(b.raw().nbytes for b in buffers) < _MAX_REFERENCE_BYTES


def _for_workers(fitted: FittedModel) -> FittedModel:
    """``fitted`` with its autoencoder on the CPU, where workers run it."""
    device = next(fitted.autoencoder.parameters()).device
    if device.type == "cpu":
        return fitted
    return replace(fitted, autoencoder=copy.deepcopy(fitted.autoencoder).to("cpu"))


def _segment_band(
    source: _Source | np.ndarray,
    variance: _Source | np.ndarray | None,
    rows: slice,
    mask: np.ndarray,
    fitted: FittedModel,
    block_rows: int,
) -> list[tuple[slice, BlockResult]]:
    """Segment a band of rows on a worker, block by block as the single-process pass does.

    ``variance`` gives the band's per-voxel variances as ``source`` gives its
    spectra, or is None.
    """
    import torch

    # One thread per task: workers run one task per core, so more would oversubscribe.
    torch.set_num_threads(1)
    band = source.band(rows) if isinstance(source, _Source) else source
    variances = variance.band(rows) if isinstance(variance, _Source) else variance
    results = []
    for start in range(0, band.shape[0], block_rows):
        part = slice(start, min(start + block_rows, band.shape[0]))
        block_slice = slice(rows.start + part.start, rows.start + part.stop)
        block_variances = None if variances is None else variances[part]
        results.append((block_slice, segment_block(band[part], mask[part], fitted, block_variances)))
    return results


def dask_block_map(scheduler: str) -> BlockMap:
    """A ``block_map`` for :func:`~napari_deepcube.core.pipeline.segment_steps` that runs on dask.

    Parameters
    ----------
    scheduler
        ``"local"`` (a local cluster, one worker process per core),
        ``"local:N"`` (N worker processes) or the address of a running
        scheduler (``tcp://host:8786``, e.g. a dask-jobqueue cluster's).

    Returns
    -------
    callable
        ``(cube, fitted)`` -> iterator of ``(rows, BlockResult)`` in row
        order. It connects when iterated and closes the client (and the
        local cluster it started) when done, stopped or failed.

    Raises
    ------
    InputError
        For a malformed ``scheduler`` (at once) or an unreachable one (when run).
    """
    parse_scheduler(scheduler)  # a typo is reported before any training starts

    def run(cube: Datacube, fitted: FittedModel) -> Iterator[tuple[slice, BlockResult]]:
        client, cluster = _connect(scheduler)
        try:
            yield from _run(client, cube, fitted)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return run


def _shipped(client: Any, data: Any) -> Any:
    """``data`` sent once to every worker, which read their bands from its file; None if it cannot travel."""
    return client.scatter(_Source(data), broadcast=True) if _shippable(data) else None


def _run(client: Any, cube: Datacube, fitted: FittedModel) -> Iterator[tuple[slice, BlockResult]]:
    height, width, n_channels = cube.shape
    # The blocks of Datacube.iter_blocks, so that every pixel is embedded in the
    # same batch as in the single-process pass and floating-point sums agree.
    block_rows = max(1, DEFAULT_BLOCK_PIXELS // max(width, 1))
    per_band = max(1, BAND_BYTES // (block_rows * width * n_channels * 4))
    band_rows = block_rows * per_band
    model = client.scatter(_for_workers(fitted), broadcast=True)
    source = _shipped(client, cube.data)
    variance = None if cube.variance is None else _shipped(client, cube.variance)
    pending: deque[Any] = deque()
    starts = iter(range(0, height, band_rows))

    def fill() -> None:
        # The window follows the workers present: a dask-jobqueue cluster grows as jobs start.
        window = TASKS_PER_THREAD * max(1, sum(client.nthreads().values()))
        while len(pending) < window and (first := next(starts, None)) is not None:
            rows = slice(first, min(first + band_rows, height))
            band = source if source is not None else _Source(cube.data).band(rows)
            variances = None
            if cube.variance is not None:
                variances = variance if variance is not None else _Source(cube.variance).band(rows)
            pending.append(
                client.submit(
                    _segment_band, band, variances, rows, cube.mask[rows], model, block_rows, pure=False
                )
            )

    fill()
    try:
        while pending:
            results = pending.popleft().result()
            fill()
            yield from results
    finally:
        for future in pending:
            future.cancel()
