"""Read spectral datacubes from files and write cubes and label maps.

Formats and their conventions (the array as stored; ``spectral_axis``
overrides the spectral axis, counted in that stored order):

========================  ==========================================  =============
suffix                    layout and calibration                      lazy
========================  ==========================================  =============
.npy                      (H, W, C), channel indices                  mapped
.npz                      key ``cube`` or the only 3-D array,         no
                          ``energy_keV``/``wavelength_nm``/... or
                          ``spectral_values`` + ``spectral_unit``
.tif .tiff                stack (C, H, W); our JSON description       mapped if
                                                                      uncompressed
.h5 .hdf5 .he5 .nxs       the only 3-D dataset or ``dataset=``,       dask
.hspy                     (H, W, C); HyperSpy axes calibrate
.fits .fit .fts           (λ, y, x), wavelength from the WCS in Å,    dask if
                          DQ != 0 -> NaN                              unscaled
.hdr (+ .raw .img .dat)   ENVI BSQ/BIL/BIP, ``wavelength`` list       mapped
.mat                      v5 or v7.3; 3-D variable (H, W, C) or an    v7.3 only
                          unmixing matrix (bands, pixels) + nRow/nCol
.zarr                     array or group, (H, W, C), attributes       dask
.bcf .pts .wdf .rpl .dm3  instrument files through RosettaSciIO (the  dask where
.dm4 .emd .spd .elid      ``vendor`` extra): the spectrum image, its   RosettaSciIO
.ser .emi, Delmic .h5     axis calibrated from the file (keV, nm,      can
                          1/cm); its 2-D images as companions
========================  ==========================================  =============

``lazy=None`` reads lazily when the stored cube exceeds
:data:`~._lazy.LAZY_THRESHOLD_BYTES` or half the available memory.
"mapped" is a :class:`~._mapped.MappedArray`: the file is memory-mapped only
while a slice is read, so a pass over the cube leaves no pages resident.
:func:`convert_cube` rewrites any readable cube as a chunked zarr store. Every
problem with a file is reported as :class:`~napari_deepcube.core.errors.InputError`
naming the file, the problem and the fix.
"""

from __future__ import annotations

from pathlib import Path

from ..cube import Datacube
from ..errors import InputError
from ._build import input_files
from ._datasets import CompanionImage, DatasetInfo
from ._dispatch import SUPPORTED_SUFFIXES, WRITERS, reader_for, writer_for
from ._lazy import LAZY_THRESHOLD_BYTES
from .convert import Conversion, convert_cube
from .labels import is_label_map_tiff, read_labels_tiff, write_labels_tiff
from .outputs import output_transaction

__all__ = [
    "LAZY_THRESHOLD_BYTES",
    "SUPPORTED_SUFFIXES",
    "WRITABLE_SUFFIXES",
    "CompanionImage",
    "Conversion",
    "DatasetInfo",
    "can_read",
    "companion_images",
    "convert_cube",
    "default_dataset",
    "input_files",
    "is_label_map_tiff",
    "list_datasets",
    "read_cube",
    "read_labels_tiff",
    "write_cube",
    "write_labels_tiff",
]

WRITABLE_SUFFIXES: tuple[str, ...] = tuple(WRITERS)


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path and the file name")
    return path


def read_cube(
    path: str | Path,
    *,
    dataset: str | None = None,
    spectral_axis: int | None = None,
    lazy: bool | None = None,
) -> Datacube:
    """Read a spectral cube from a file.

    Parameters
    ----------
    path
        The file (a folder for zarr). The format is recognised from the
        file's first bytes, else from its suffix.
    dataset
        Which array of a container file (HDF5 path, .npz key, MATLAB
        variable, zarr path, FITS EXTNAME); by default the only 3-D one.
    spectral_axis
        The spectral axis of the array as stored (0, 1, 2 or negative),
        overriding the format's convention.
    lazy
        True reads on demand (memory map or dask), False loads the cube into
        memory, None decides from the cube's size.

    Returns
    -------
    Datacube
        Named after the file stem, with ``source``, ``format`` and calibration
        facts in its metadata.

    Raises
    ------
    InputError
        For a missing, unsupported, damaged or unsuitable file, or bad options.
    """
    path = _existing(path)
    return reader_for(path).read(path, dataset=dataset, spectral_axis=spectral_axis, lazy=lazy)


def can_read(path: str | Path) -> bool:
    """Whether :func:`read_cube` can find a cube in ``path``, reading headers only.

    A 2-D or RGB TIFF and a file without any 3-D numeric array give False,
    so that napari opens them with another reader.
    """
    try:
        return bool(list_datasets(path))
    except InputError:
        return False


def list_datasets(path: str | Path) -> list[DatasetInfo]:
    """The 3-D numeric arrays in a file, for a chooser.

    Returns
    -------
    list of DatasetInfo
        ``(name, shape, dtype)`` tuples: the path in the file (HDF5, zarr),
        key (.npz), variable (.mat: an unmixing matrix with the shape of its
        cube) or HDU name (FITS); ``""`` for single-image formats.
    """
    path = _existing(path)
    return reader_for(path).list_datasets(path)


def default_dataset(path: str | Path, datasets: list[DatasetInfo]) -> str | None:
    """The cube that stands for the whole file, among ``datasets`` (what :func:`list_datasets` gave).

    A FITS file is its science cube (the primary HDU or DATA): its other
    3-D HDUs (STAT, DQ) qualify that cube and are not cubes of their own.
    None for formats whose cubes each stand on their own (HDF5, .npz, zarr...).
    """
    return reader_for(_existing(path)).default_dataset(datasets)


def companion_images(path: str | Path) -> list[CompanionImage]:
    """The 2-D images a file keeps beside its cube, placed on the cube's pixel grid.

    An instrument's electron image or white-light image (Bruker .bcf, Renishaw
    .wdf, read through RosettaSciIO); none for the other formats.
    """
    path = _existing(path)
    return reader_for(path).companion_images(path)


def write_cube(path: str | Path, cube: Datacube) -> None:
    """Write ``cube`` atomically, so that :func:`read_cube` gets it back.

    ``.npy`` holds the (H, W, C) array alone; ``.npz`` the array under
    ``cube`` with ``spectral_values``, ``spectral_unit`` and
    ``spectral_label``; ``.tif``/``.tiff`` a (C, H, W) stack with the
    calibration as JSON in the ImageDescription; ``.zarr`` an (H, W, C) array
    with the calibration in its attributes. The file appears complete or not
    at all (a temporary file in the same folder is renamed over it).

    Raises
    ------
    InputError
        For an unsupported suffix, a folder that cannot be written, or a path
        that is the file the cube was read from.
    """
    path = Path(path).expanduser()
    with output_transaction(inputs=input_files(cube)):
        writer_for(path).write(path, cube)
