"""The pass over every pixel on dask.distributed gives exactly the single-process result."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from napari_deepcube.cli import EXIT_OK, EXIT_USAGE, main  # noqa: E402
from napari_deepcube.core import distributed as dist  # noqa: E402
from napari_deepcube.core.checkpoint import save_model  # noqa: E402
from napari_deepcube.core.config import SegmentConfig  # noqa: E402
from napari_deepcube.core.errors import InputError  # noqa: E402
from napari_deepcube.core.io import read_cube, read_labels_tiff, write_cube  # noqa: E402
from napari_deepcube.core.pipeline import segment  # noqa: E402
from napari_deepcube.core.segmentation import FittedModel, Segmentation  # noqa: E402
from napari_deepcube.core.synthetic import SyntheticCube, make_painting  # noqa: E402

#: A quick training: the equality of the two passes, not the quality, is tested.
QUICK = SegmentConfig(epochs=2, n_train=800, n_refine=1500, k=4, seed=0)
#: Segmenting with the trained model: no training, the model's k.
REUSE = SegmentConfig(n_train=800, seed=0)


@pytest.fixture(scope="module")
def painting() -> SyntheticCube:
    return make_painting(40, 48, 96, seed=0)


@pytest.fixture(scope="module")
def fitted(painting: SyntheticCube) -> FittedModel:
    """A model trained once; every run below only does the pass over every pixel."""
    return segment(painting.cube, QUICK).model


@pytest.fixture(scope="module")
def single(painting: SyntheticCube, fitted: FittedModel) -> Segmentation:
    """The single-process result, the reference for every run below (the same data
    read from any file gives the same result)."""
    return segment(painting.cube, REUSE, model=fitted)


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A running two-worker cluster, reached by its address as a remote one would be."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def separate_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes, started as an HPC job script starts them."""
    scheduler_file = tmp_path_factory.mktemp("cluster") / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    # The dask command loads every installed dask entry point; none may need a display.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # Dashboards on free ports: they stay up through the module's other tests and clusters.
    common = ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    scheduler = [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *common]
    processes = [subprocess.Popen(scheduler, **quiet)]
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = [dask, "worker", "--nthreads", "1", "--memory-limit", "0", *common]
        processes += [subprocess.Popen(worker, **quiet) for _ in range(2)]
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=120) as client:
            client.wait_for_workers(2, timeout=120)
            yield client.scheduler.address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)


@pytest.mark.parametrize("kind", ["in memory", "memory-mapped file"])
def test_a_cluster_of_separate_processes_gives_the_same_result(
    tmp_path: Path,
    painting: SyntheticCube,
    fitted: FittedModel,
    single: Segmentation,
    separate_processes: str,
    kind: str,
) -> None:
    cube = painting.cube
    if kind == "memory-mapped file":
        write_cube(tmp_path / "painting.npy", cube)
        cube = read_cube(tmp_path / "painting.npy", lazy=True)
    spread = segment(cube, REUSE, model=fitted, block_map=dist.dask_block_map(separate_processes))
    _assert_same(single, spread)


def test_a_local_cluster_starts_beside_another_clusters_dashboard(
    painting: SyntheticCube, fitted: FittedModel, single: Segmentation
) -> None:
    with socket.socket() as other:
        # dask's default dashboard port, as another cluster on the machine holds it
        # (if someone already does, the case is the same).
        with contextlib.suppress(OSError):
            other.bind(("", 8787))
            other.listen()
        spread = segment(painting.cube, REUSE, model=fitted, block_map=dist.dask_block_map("local:1"))
    _assert_same(single, spread)


def _assert_same(one: Segmentation, other: Segmentation) -> None:
    np.testing.assert_array_equal(one.labels, other.labels)
    np.testing.assert_array_equal(one.probabilities, other.probabilities)
    np.testing.assert_array_equal(one.latents, other.latents)
    np.testing.assert_allclose(one.mean_spectra, other.mean_spectra, rtol=1e-12)
    np.testing.assert_allclose(one.std_spectra, other.std_spectra, rtol=1e-12, atol=1e-12)


def test_cli_scheduler_local_2_gives_the_default_labels(
    tmp_path: Path, painting: SyntheticCube, fitted: FittedModel
) -> None:
    cube = tmp_path / "painting.npy"
    write_cube(cube, painting.cube)
    model = save_model(tmp_path / "model.pt", fitted)
    common = ["--load-model", str(model), "--n-train", "800", "--quiet"]
    outputs = {}
    for name, extra in (("default", []), ("dask", ["--scheduler", "local:2"])):
        labels, spectra = tmp_path / f"{name}.tif", tmp_path / f"{name}.csv"
        args = ["segment", str(cube), "-o", str(labels), "--spectra", str(spectra), *common, *extra]
        assert main(args) == EXIT_OK
        outputs[name] = (read_labels_tiff(labels)[0], np.genfromtxt(spectra, delimiter=",", skip_header=1))
    np.testing.assert_array_equal(outputs["default"][0], outputs["dask"][0])
    np.testing.assert_allclose(outputs["default"][1], outputs["dask"][1])


@pytest.mark.parametrize("kind", ["in memory", "hdf5 file", "memory-mapped file", "zarr store"])
def test_every_kind_of_cube_gives_the_same_result(
    tmp_path: Path,
    painting: SyntheticCube,
    fitted: FittedModel,
    single: Segmentation,
    address: str,
    kind: str,
) -> None:
    """In memory or in HDF5 the bands travel with the tasks; from other files the workers read them."""
    cube = painting.cube
    if kind == "hdf5 file":
        h5py = pytest.importorskip("h5py")
        path = tmp_path / "painting.h5"
        with h5py.File(path, "w") as handle:
            handle["cube"] = np.asarray(cube.data)
        cube = read_cube(path, lazy=True)
    elif kind != "in memory":
        path = tmp_path / ("painting.npy" if kind == "memory-mapped file" else "painting.zarr")
        write_cube(path, cube)
        cube = read_cube(path, lazy=True)
    assert dist._shippable(cube.data) is kind.endswith(("mapped file", "zarr store"))
    spread = segment(cube, REUSE, model=fitted, block_map=dist.dask_block_map(address))
    _assert_same(single, spread)


@pytest.mark.parametrize("lazy", [True, False])
def test_the_workers_divide_by_the_stat_variances_as_the_single_process_pass(
    heteroscedastic_fits: tuple[Path, np.ndarray], address: str, lazy: bool
) -> None:
    """Read lazily, the workers read their bands of STAT from the file; in memory they go with the tasks."""
    pytest.importorskip("astropy.io.fits")
    path, _ = heteroscedastic_fits
    cube = read_cube(path, lazy=lazy)
    trained = segment(cube, SegmentConfig(epochs=1, n_train=800, n_refine=1500, k=3, seed=0))
    assert trained.model.preprocessor.uses_variance
    assert dist._shippable(cube.variance) is lazy
    spread = segment(cube, REUSE, model=trained.model, block_map=dist.dask_block_map(address))
    _assert_same(segment(cube, REUSE, model=trained.model), spread)
    assert spread.noise is not None and spread.noise.source == "variance"


def test_bands_are_cut_into_the_single_process_blocks(
    painting: SyntheticCube,
    fitted: FittedModel,
    single: Segmentation,
    address: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small bands and a short window of tasks still give every block once, in order."""
    monkeypatch.setattr(dist, "BAND_BYTES", 1)
    monkeypatch.setattr(dist, "TASKS_PER_THREAD", 1)
    spread = segment(painting.cube, REUSE, model=fitted, block_map=dist.dask_block_map(address))
    _assert_same(single, spread)


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("local", ("local", None)),
        ("local:3", ("local", 3)),
        ("tcp://10.0.0.5:8786", ("tcp://10.0.0.5:8786", None)),
    ],
)
def test_parse_scheduler(scheduler: str, expected: tuple[str, int | None]) -> None:
    assert dist.parse_scheduler(scheduler) == expected


@pytest.mark.parametrize("scheduler", ["local:0", "local:two", "local:", " "])
def test_bad_scheduler_is_refused_before_any_work(scheduler: str) -> None:
    with pytest.raises(InputError, match="scheduler"):
        dist.dask_block_map(scheduler)


def test_cli_reports_a_bad_scheduler_in_one_line(
    tmp_path: Path, painting: SyntheticCube, capsys: pytest.CaptureFixture[str]
) -> None:
    cube = tmp_path / "painting.npy"
    write_cube(cube, painting.cube)
    assert main(["segment", str(cube), "-o", str(tmp_path / "l.tif"), "--scheduler", "local:x"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("deepcube: error: --scheduler 'local:x'") and len(err.strip().splitlines()) == 1


def test_unreachable_scheduler_names_the_fix(
    painting: SyntheticCube, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 1)
    run = dist.dask_block_map("tcp://127.0.0.1:9")  # the discard port: nobody listens
    with pytest.raises(InputError, match=r"could not reach a dask scheduler at 'tcp://127\.0\.0\.1:9'"):
        next(run(painting.cube, None))  # type: ignore[arg-type]
