"""Benchmark: segment a cube larger than comfortable memory, measuring time and peak RSS.

For each size asked, a uint16 MA-XRF-like cube (H, W, C) is written to disk as
.npy, band by band, so that generating it needs little memory: a 256 x 256
synthetic painting (``core.synthetic.make_painting``, photon counts) is tiled
across the image, every other tile mirrored so that paint regions continue
across tile edges. Then ``deepcube segment`` runs on it in a child process;
the child's wall time and peak resident set size (``os.wait4``'s rusage, for
that child alone) are printed as one table row per size, with the stage
timings from its report. The target is a peak RSS under 1.5 GB whatever the
cube's size: memory must not grow with the cube.

Run with ``make bench-big`` or e.g.::

    python benchmarks/bigcube.py --gigabytes 2 8 --segment-args "--k 6"

A cube already on disk with the right shape is reused (``--dir``); sizes
that do not fit on the disk (with a margin) are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: Peak RSS the issue asks for, whatever the cube's size.
TARGET_PEAK_BYTES = 1.5e9
#: Side of the synthetic painting tiled across the image.
TILE = 256
#: Rows written at a time while generating (bounded generation memory).
ROWS_PER_WRITE = 16


def cube_shape(gigabytes: float, n_channels: int) -> tuple[int, int, int]:
    """A square (H, W, C) uint16 cube of about ``gigabytes`` GiB."""
    pixels = gigabytes * 1024**3 / (2 * n_channels)
    side = max(TILE, round(math.sqrt(pixels)))
    return side, side, n_channels


def _tile(n_channels: int, seed: int) -> np.ndarray:
    from napari_deepcube.core.synthetic import make_painting

    painting = make_painting(TILE, TILE, n_channels, seed=seed)
    return np.asarray(painting.cube.data).astype(np.uint16)


def write_cube(path: Path, shape: tuple[int, int, int], seed: int = 0) -> float:
    """Write the tiled painting as .npy at ``path``; returns the seconds taken.

    Written with plain file writes through a temporary file renamed at the
    end, so that neither a memory map nor a half-written cube is left behind.
    """
    start = time.perf_counter()
    height, width, n_channels = shape
    tile = _tile(n_channels, seed)
    # Mirror every other tile, across and down, so that paint regions continue over tile edges.
    cols = np.arange(width)
    in_tile_cols = np.where((cols // TILE) % 2 == 0, cols % TILE, TILE - 1 - cols % TILE)
    temp = path.with_name(f".{path.name}.tmp")
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint16)),
        "fortran_order": False,
        "shape": shape,
    }
    with open(temp, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, header)
        for first in range(0, height, ROWS_PER_WRITE):
            rows = np.arange(first, min(first + ROWS_PER_WRITE, height))
            in_tile_rows = np.where((rows // TILE) % 2 == 0, rows % TILE, TILE - 1 - rows % TILE)
            stream.write(tile[in_tile_rows[:, None], in_tile_cols[None, :]].tobytes())
    os.replace(temp, path)
    return time.perf_counter() - start


def _existing_shape(path: Path) -> tuple[int, ...] | None:
    if not path.is_file():
        return None
    try:
        return tuple(np.load(path, mmap_mode="r").shape)
    except (OSError, ValueError):
        return None


def run_segment(cube: Path, out: Path, extra: list[str]) -> tuple[int, float, float, dict]:
    """Run ``deepcube segment`` on ``cube`` in a child process.

    Returns
    -------
    exit status, wall seconds, peak RSS in bytes, report (empty if none)
    """
    labels, report = out / f"{cube.stem}_labels.tif", out / f"{cube.stem}_report.json"
    command = [
        sys.executable, "-m", "napari_deepcube.cli", "segment", str(cube),
        "-o", str(labels), "--report", str(report), "--quiet", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    child = subprocess.Popen(command)
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in earlier sizes.
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    data = json.loads(report.read_text()) if child.returncode == 0 and report.exists() else {}
    return child.returncode, seconds, peak, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, nargs="+", default=[2.0], help="cube sizes in GiB")
    parser.add_argument("--channels", type=int, default=1024, help="energy channels (default 1024)")
    parser.add_argument("--dir", type=Path, default=Path("out/bigcube"), help="where cubes are written")
    parser.add_argument("--segment-args", default="", help="extra `deepcube segment` options, quoted")
    parser.add_argument("--keep", action="store_true", help="keep the cubes for a later run")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(args.segment_args)

    print(f"deepcube segment {' '.join(extra)} on uint16 .npy cubes; target peak RSS < 1.5 GB")
    print(
        f"{'GiB':>5} {'shape':>18} {'write s':>8} {'segment s':>10} {'peak RSS MB':>12} {'k':>3}  stages (s)"
    )
    failures = 0
    for gigabytes in args.gigabytes:
        shape = cube_shape(gigabytes, args.channels)
        path = args.dir / f"bigcube_{shape[0]}x{shape[1]}x{shape[2]}.npy"
        nbytes = math.prod(shape) * 2
        label = f"{gigabytes:>5g} {'x'.join(map(str, shape)):>18}"
        written = "reused"
        if _existing_shape(path) != shape:
            free = shutil.disk_usage(args.dir).free
            if free < nbytes * 1.1 + 1e9:
                print(f"{label}  skipped: {free / 1e9:.1f} GB free on disk, {nbytes / 1e9:.1f} GB needed")
                continue
            written = f"{write_cube(path, shape):.1f}"
        status, seconds, peak, report = run_segment(path, args.dir, extra)
        stages = ", ".join(f"{k} {v:.0f}" for k, v in report.get("timings", {}).items())
        verdict = "" if peak < TARGET_PEAK_BYTES else "  OVER TARGET"
        if status != 0:
            verdict = f"  FAILED (exit {status})"
        failures += bool(verdict)
        k = report.get("k", "-")
        print(f"{label} {written:>8} {seconds:>10.1f} {peak / 1e6:>12.0f} {k:>3}  {stages}{verdict}")
        if not args.keep:
            path.unlink(missing_ok=True)
    return 1 if failures else 0  # a failed run or one over the memory target


if __name__ == "__main__":
    sys.exit(main())
