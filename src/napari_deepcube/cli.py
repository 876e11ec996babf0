"""The ``deepcube`` command.

Exit status: 0 on success, 2 on bad input or usage (one line on stderr),
1 on any other failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from ._cli_maps import add_maps_parser, run_maps
from .core.config import SegmentConfig, settings
from .core.errors import InputError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: The columns and rows tqdm gives its bar on an 80 x 24 terminal (one of each short), used
#: on a terminal that reports no size.
_SIZELESS_TERMINAL = (79, 23)

#: The settings ``deepcube segment`` offers as options, each with its one default.
CLI_SETTINGS = (
    "k", "k_min", "k_max", "seed", "model", "preset", "epochs", "latent_dim", "n_train", "kind",
    "spatial_weight", "device", "channels", "spectral_range",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as InputError, so one handler prints them."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of the README; every setting's default comes from SegmentConfig."""
    parser = _Parser(
        prog="deepcube", description="Unsupervised segmentation of spectral datacubes."
    )
    parser.add_argument("--version", action="version", version=f"napari-deepcube {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    seg = commands.add_parser("segment", help="segment a cube into a label map")
    seg.add_argument(
        "input", type=Path, help="cube file: .npy .npz .tif .h5 .fits .zarr .mat .hdr ..."
    )
    seg.add_argument("-o", "--output", type=Path, required=True, help="label map TIFF to write")
    seg.add_argument("--report", type=Path, help="write a JSON report here")
    seg.add_argument("--overview", type=Path, help="write an overview PNG here")
    seg.add_argument("--spectra", type=Path, help="write the cluster mean spectra as CSV here")
    seg.add_argument(
        "--probabilities",
        type=Path,
        metavar="FILE",
        help="write each cluster's probability map here: a float32 TIFF of k pages (k, H, W)",
    )
    seg.add_argument("--spectral-axis", type=int, help="axis of the stored array that is spectral")
    seg.add_argument("--dataset", help="dataset inside an HDF5/.mat/zarr file")
    seg.add_argument(
        "--mask",
        type=Path,
        metavar="FILE",
        help="segment only the nonzero pixels of this (H, W) label or boolean image "
        "(.tif .npy .png); the others get label 0",
    )
    for setting in settings().values():
        if setting.name in CLI_SETTINGS:
            default = "" if setting.default in (None, "") else f" (default {setting.default})"
            seg.add_argument(
                setting.flag,
                dest=setting.name,
                type=setting.type,
                choices=setting.choices or None,
                help=setting.help + default,
            )
    seg.add_argument(
        "--no-variance",
        dest="variance",
        action="store_false",
        help="divide fluxes by the noise estimated per channel, not by the file's per-voxel "
        "variances (a FITS STAT extension), which are used when the file has them",
    )
    seg.add_argument(
        "--rest-frame",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="move every pixel's spectrum to one rest frame first, measuring each pixel's "
        "line-of-sight velocity against the cube's own lines (emission lines on a wavelength axis: "
        "a rotating galaxy's gas is clustered by its lines, not its velocity); by default only where "
        "a sample's velocities spread over more than one feature bin",
    )
    seg.add_argument(
        "--velocities",
        type=Path,
        metavar="FILE",
        help="with --rest-frame, write each pixel's velocity (km/s; NaN where no line shows) "
        "as a float32 TIFF here",
    )
    seg.add_argument(
        "--scheduler",
        metavar="ADDRESS|local[:N]",
        help="run the pass over every pixel on dask.distributed: a scheduler address, or a "
        "local cluster of N worker processes (training stays here)",
    )
    seg.add_argument("--save-model", type=Path, help="save the trained model (.pt) here")
    seg.add_argument("--load-model", type=Path, help="segment with a saved model, no training")
    seg.add_argument("--quiet", action="store_true", help="print nothing but errors")

    convert = commands.add_parser(
        "convert", help="rechunk a cube into a chunked zarr store, read lazily and fast"
    )
    convert.add_argument(
        "input", type=Path, help="cube file: .npy .npz .tif .h5 .fits .zarr .mat .hdr ..."
    )
    convert.add_argument("output", type=Path, help="zarr store to write (a folder named *.zarr)")
    convert.add_argument("--dataset", help="dataset inside an HDF5/.mat/zarr file")
    convert.add_argument(
        "--spectral-axis", type=int, help="axis of the stored array that is spectral"
    )
    convert.add_argument("--quiet", action="store_true", help="print nothing but errors")

    add_maps_parser(commands)

    demo = commands.add_parser(
        "demo", help="segment the built-in MA-XRF sample and compare to its ground truth"
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument("--sample", choices=("painting", "nebula"), default="painting")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true")
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM stop the run like Ctrl-C, so that temporaries are removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        with sigterm_interrupts():
            return _main(argv)
    finally:
        # CPython (3.8-3.13 at least) marks the process as stopped by Ctrl-C when a
        # KeyboardInterrupt is raised inside source run by exec (dataclasses make their methods
        # so while modules import), even once caught, and a `python -m` run then ends by SIGINT
        # whatever status it returns. Source given to exec as a string clears that mark when it
        # starts (a compiled code object does not); an interrupt that escapes sets it again.
        exec("pass")


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "segment":
            return _segment(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "maps":
            return run_maps(args)
        return _demo(args)
    except InputError as error:
        print(f"deepcube: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deepcube: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print(
            "deepcube: error: out of memory; try a smaller --n-train, or convert the cube to a "
            "chunked format (zarr) so it is read lazily",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _config(args: argparse.Namespace) -> Any:
    """The run's settings: the options given, the preset's values for the others."""
    given = {name: getattr(args, name) for name in CLI_SETTINGS if getattr(args, name) is not None}
    # A terminal shows no preview map, so none is computed (a quarter of a small cube's run).
    return SegmentConfig.from_preset(
        **given, variance=args.variance, rest_frame=args.rest_frame, preview_every=0
    )


def _segment_outputs(args: argparse.Namespace) -> list[Path]:
    """Every file ``segment`` will write, each checked before the cube is read."""
    from .core.checkpoint_file import model_file
    from .core.io.probabilities import check_probabilities_path
    from .core.io.tiff import check_tiff_name

    check_tiff_name(args.output, "the label map")
    if args.probabilities is not None:
        check_probabilities_path(args.probabilities)
    if args.velocities is not None:
        check_tiff_name(args.velocities, "the velocity map")
        if not args.rest_frame and args.load_model is None:
            raise InputError("--velocities writes what --rest-frame measures; add --rest-frame")
    outputs = [args.output, args.report, args.overview, args.spectra, args.probabilities, args.velocities]
    if args.save_model:
        args.save_model = model_file(args.save_model)
        outputs.append(args.save_model)
    return [path for path in outputs if path is not None]


def _segment(args: argparse.Namespace) -> int:
    # torch and scikit-learn (4-5 s to import) come with the pipeline, after every check of the input.
    from .core.io import input_files, read_cube
    from .core.io.masks import read_mask
    from .core.io.outputs import check_outputs, output_transaction

    config = _config(args)
    inputs = [path for path in (args.input, args.load_model, args.mask) if path is not None]
    outputs = _segment_outputs(args)
    check_outputs(outputs, inputs)
    block_map = _block_map(args.scheduler)  # a bad --scheduler is reported before the cube is read
    start = time.perf_counter()
    cube = read_cube(args.input, dataset=args.dataset, spectral_axis=args.spectral_axis)
    read_seconds = time.perf_counter() - start
    inputs += input_files(cube)  # an ENVI raw file, the zarr store around the array
    check_outputs(outputs, inputs)
    mask = None
    if args.mask is not None:
        mask = read_mask(args.mask, cube.image_shape)
        cube = cube.with_mask(mask)
    model = None
    if args.load_model:
        from .core.checkpoint import load_model

        model = load_model(args.load_model)
        if args.velocities is not None and model.rest_frame is None:
            raise InputError(
                f"--velocities: the model {args.load_model.name} was trained without --rest-frame, "
                "so no velocity is measured; leave --velocities out"
            )
    segmentation = _run(cube, config, model, quiet=args.quiet, block_map=block_map)
    segmentation.timings = {"read": read_seconds, **segmentation.timings}
    report = _report(args, cube, segmentation)
    if mask is not None:
        report["mask"] = {"file": str(args.mask), "n_pixels": int(mask.sum())}
    with output_transaction(inputs=inputs):
        _write_outputs(args, cube, segmentation, report)
        if args.save_model:
            from .core.checkpoint import save_model

            save_model(args.save_model, segmentation.model)
    if not args.quiet:
        print(f"k = {segmentation.k} ({segmentation.k_reason})")
        if segmentation.noise is not None:
            print(f"noise: {segmentation.noise.description}")
        if segmentation.frame_reason:
            print(segmentation.frame_reason)
        print(
            f"wrote {args.output} ({segmentation.n_pixels} pixels, {time.perf_counter() - start:.1f} s)"
        )
    return EXIT_OK


def _block_map(scheduler: str | None) -> Any:
    """The pass over every pixel: here (None) or on dask.distributed (``--scheduler``)."""
    if scheduler is None:
        return None
    from .core.distributed import dask_block_map

    return dask_block_map(scheduler)


def _progress_bar(**options: Any) -> Any:
    """A tqdm bar on standard error."""
    from tqdm import tqdm

    # tqdm hides every bar on a terminal that reports no size (an editor's console, a bare
    # pseudo-terminal): such a terminal gets the bar of an 80 x 24 one.
    try:
        columns, rows = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):  # a stand-in for standard error, or a device that is no console
        columns, rows = 0, 0
    if not columns or not rows:
        options = {"ncols": _SIZELESS_TERMINAL[0], "nrows": _SIZELESS_TERMINAL[1], **options}
    return tqdm(file=sys.stderr, **options)


def _run(cube: Any, config: Any, model: Any, *, quiet: bool, block_map: Any = None) -> Any:
    """Segment with a progress bar on a terminal, silently otherwise."""
    from .core.pipeline import segment

    if quiet or not sys.stderr.isatty():
        return segment(cube, config, model=model, block_map=block_map)
    with _progress_bar(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining}") as bar:

        def show(event: Any) -> None:
            bar.n = int(event.fraction * 1000)
            bar.set_description_str(f"{event.stage:>9}: {event.message}")
            bar.refresh()

        return segment(cube, config, model=model, progress=show, block_map=block_map)


def _report(args: argparse.Namespace, cube: Any, segmentation: Any) -> dict[str, Any]:
    """The JSON report of a run, with the input it read."""
    report: dict[str, Any] = segmentation.report()
    report["input"] = {
        "path": str(getattr(args, "input", "")),
        "shape": list(cube.shape),
        "name": cube.name,
    }
    return report


def _write_outputs(
    args: argparse.Namespace, cube: Any, segmentation: Any, report: dict[str, Any], truth: Any = None
) -> None:
    from .core.io.labels import write_labels_tiff
    from .core.io.results import write_report, write_spectra_csv
    from .core.palette import label_colors

    write_labels_tiff(
        args.output,
        segmentation.labels,
        colors=label_colors(segmentation.k),
        metadata={"k": segmentation.k, "spectral_unit": cube.spectral_unit, "cube": cube.name},
    )
    if getattr(args, "spectra", None):
        curves = {}
        for label in range(1, segmentation.k + 1):
            curves[f"cluster {label} mean"] = segmentation.mean_spectra[label - 1]
            curves[f"cluster {label} std"] = segmentation.std_spectra[label - 1]
        write_spectra_csv(args.spectra, cube.spectral_values, cube.axis_title, curves)
    if getattr(args, "probabilities", None):
        from .core.io.probabilities import write_probabilities_tiff

        write_probabilities_tiff(args.probabilities, segmentation.probabilities, metadata={"cube": cube.name})
    if getattr(args, "velocities", None) and segmentation.velocities is not None:
        from .core.io.maps import write_maps_tiff

        facts = {"quantity": "line-of-sight velocity", "unit": "km/s", "cube": cube.name}
        write_maps_tiff(args.velocities, segmentation.velocities[None], [facts])
    if getattr(args, "overview", None):
        from .core.overview import save_overview  # matplotlib: 0.7 s to import, only for this

        save_overview(args.overview, cube, segmentation, truth)
    if args.report:
        write_report(args.report, report)


def _convert(args: argparse.Namespace) -> int:
    from .core.io import convert_cube

    options = {"dataset": args.dataset, "spectral_axis": args.spectral_axis}
    if args.quiet or not sys.stderr.isatty():
        result = convert_cube(args.input, args.output, **options)
    else:
        with _progress_bar(total=1, unit="row", desc="converting") as bar:

            def show(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = convert_cube(args.input, args.output, progress=show, **options)
    if not args.quiet:
        height, width, channels = result.shape
        print(
            f"wrote {result.path} ({height} x {width} x {channels} {result.dtype}, "
            f"{result.nbytes / 1024**3:.2f} GiB in chunks of {result.chunks[0]} x "
            f"{result.chunks[1]} pixels, {result.seconds:.1f} s, "
            f"{result.nbytes / 1024**2 / max(result.seconds, 1e-9):.0f} MiB/s)"
        )
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from sklearn.metrics import adjusted_rand_score

    from .core.io.outputs import output_transaction
    from .core.synthetic import make_nebula, make_painting

    config = SegmentConfig(seed=args.seed)
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} is a file; give a folder for the demo's outputs")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder {args.out} ({exc.strerror}); choose another --out"
        ) from exc
    start = time.perf_counter()
    sample = (
        make_painting(seed=args.seed) if args.sample == "painting" else make_nebula(seed=args.seed)
    )
    if not args.quiet:
        print(f"sample: {sample.description}")
    segmentation = _run(sample.cube, config, None, quiet=args.quiet)
    args.output = args.out / f"{args.sample}_labels.tif"
    args.report = args.out / f"{args.sample}_report.json"
    args.overview = args.out / f"{args.sample}_overview.png"
    args.spectra = args.out / f"{args.sample}_spectra.csv"
    report = _report(args, sample.cube, segmentation)
    ari = float(adjusted_rand_score(sample.labels.ravel(), segmentation.labels.ravel()))
    report["ground_truth"] = {"k": sample.k, "adjusted_rand_index": round(ari, 4)}
    with output_transaction():
        _write_outputs(args, sample.cube, segmentation, report, truth=sample.labels)
    if not args.quiet:
        print(f"chosen k = {segmentation.k} (true k = {sample.k}); {segmentation.k_reason}")
        print(f"adjusted Rand index against ground truth: {ari:.3f}")
        print(
            f"wrote {args.output}, {args.report}, {args.overview}, {args.spectra} "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
