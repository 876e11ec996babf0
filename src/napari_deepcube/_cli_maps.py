"""``deepcube maps``: element and window maps of a cube as a float32 TIFF stack.

Every line (``--lines "Pb La, Fe Ka"``) and window (``--window 6.2:6.6``) is
checked on the cube's axis before anything is written; the maps are
computed a band of rows at a time (:func:`~.core.element_maps.compute_maps`)
and written atomically, so a refused or failed run leaves no file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .core.errors import InputError


def add_maps_parser(commands: Any) -> None:
    """Add the ``maps`` subcommand to the ``deepcube`` subparsers ``commands``."""
    maps = commands.add_parser(
        "maps", help="map X-ray lines (net counts) and spectral windows of a cube as a TIFF stack"
    )
    maps.add_argument("input", type=Path, help="cube file: .npy .npz .tif .h5 .fits .zarr .bcf ...")
    maps.add_argument("-o", "--output", type=Path, required=True, help="maps TIFF to write")
    maps.add_argument(
        "--lines", default="", help='X-ray lines, e.g. "Pb La, Fe Ka": net counts, background removed'
    )
    maps.add_argument(
        "--window", action="append", default=[], metavar="START:STOP",
        help="a spectral window in the axis's unit, e.g. 6.2:6.6; repeat for several",
    )
    maps.add_argument(
        "--statistic", choices=("sum", "mean"),
        help="how a window combines its channels (default: sum on X-ray and channel axes, else mean)",
    )
    maps.add_argument(
        "--present", default="",
        help="other elements that may be present (Hg, Ca): line backgrounds avoid their lines",
    )
    # No number in the help: the default lives in core.xray_lines, whose xraydb import
    # would cost every `deepcube` command a second.
    maps.add_argument(
        "--fwhm-mn", type=float, metavar="KEV",
        help="detector FWHM at Mn Kα in keV (default: a typical silicon drift detector's)",
    )
    maps.add_argument("--spectral-axis", type=int, help="axis of the stored array that is spectral")
    maps.add_argument("--dataset", help="dataset inside an HDF5/.mat/zarr file")
    maps.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _window_bounds(text: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"--window {text!r} is not START:STOP, e.g. --window 6.2:6.6") from None


def _windows(args: argparse.Namespace, axis: Any) -> list[Any]:
    """Every map's window on the cube's axis, each checked (InputError for a bad one)."""
    from .core.element_maps import line_window, parse_lines, range_window, window_statistic
    from .core.xray_lines import parse_elements

    lines = parse_lines(args.lines) if args.lines.strip() else []
    present = [*parse_elements(args.present), *(line.element for line in lines)]
    resolution = {} if args.fwhm_mn is None else {"fwhm_mn_kev": args.fwhm_mn}
    windows = [line_window(axis, line, present=present, **resolution) for line in lines]
    statistic = args.statistic or window_statistic(axis)
    windows += [range_window(axis, *_window_bounds(text), statistic) for text in args.window]
    return windows


def run_maps(args: argparse.Namespace) -> int:
    """Compute and write the maps ``args`` asks for; returns the exit status (0)."""
    from .core.element_maps import compute_maps
    from .core.io import input_files, read_cube
    from .core.io.maps import write_maps_tiff
    from .core.io.outputs import check_outputs, output_transaction
    from .core.io.tiff import check_tiff_name

    if not args.lines.strip() and not args.window:
        raise InputError('nothing to map: give --lines "Pb La, Fe Ka" and/or --window START:STOP')
    check_tiff_name(args.output, "the maps")
    inputs = [args.input]
    check_outputs([args.output], inputs)
    start = time.perf_counter()
    cube = read_cube(args.input, dataset=args.dataset, spectral_axis=args.spectral_axis)
    inputs += input_files(cube)
    check_outputs([args.output], inputs)
    windows = _windows(args, cube.axis)
    maps = compute_maps(cube.data, windows)
    with output_transaction(inputs=inputs):
        write_maps_tiff(args.output, maps, [window.facts() for window in windows])
    if not args.quiet:
        titles = ", ".join(window.title for window in windows)
        print(f"wrote {args.output} ({titles}; {time.perf_counter() - start:.1f} s)")
    return 0
