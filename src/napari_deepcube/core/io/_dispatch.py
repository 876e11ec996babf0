"""Which module reads a path: its magic bytes when they are known, else its suffix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..cube import Datacube
from ..errors import InputError
from . import envi, fits, hdf5, mat, npy, tiff, vendor, zarr
from ._datasets import CompanionImage, DatasetInfo


class Reader(Protocol):
    """What every reader module offers (npy, tiff, hdf5, fits, envi, mat, zarr, vendor)."""

    @property
    def SUFFIXES(self) -> tuple[str, ...]:
        """File name endings of the format, lower case with the dot."""
        ...

    def read(
        self, path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None
    ) -> Datacube:
        """The cube in ``path``: eager, memory-mapped or dask; InputError for anything wrong."""
        ...

    def list_datasets(self, path: Path) -> list[DatasetInfo]:
        """Every array in ``path`` with its shape and type, cubes or not."""
        ...

    def default_dataset(self, datasets: Sequence[DatasetInfo]) -> str | None:
        """The cube that stands for the whole file, among its ``datasets``; None if none does.

        Some formats keep one cube and arrays that qualify it in one file (a
        FITS cube's STAT variances and DQ flags): the file is that cube, and
        the others are no cubes of their own. Where each cube stands on its own
        (the arrays of an HDF5 file, an .npz), None.
        """
        ...

    def companion_images(self, path: Path) -> list[CompanionImage]:
        """The 2-D images stored with the cube (an electron image), on its pixel grid; most formats none."""
        ...


class Writer(Protocol):
    """What a module that writes cubes offers (npy, tiff, zarr)."""

    def write(self, path: Path, cube: Datacube) -> None:
        """Write ``cube`` to ``path`` atomically, so that its reader gets it back."""
        ...


READERS: tuple[Reader, ...] = (npy, tiff, hdf5, fits, envi, mat, zarr, vendor)
WRITERS: dict[str, Writer] = {".npy": npy, ".npz": npy, ".tif": tiff, ".tiff": tiff, ".zarr": zarr}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(s for module in READERS for s in module.SUFFIXES)

#: File signatures: a file whose suffix lies is still read by the right module.
_MAGIC: tuple[tuple[int, bytes, Reader], ...] = (
    (0, npy.NPY_MAGIC, npy),
    (0, npy.NPZ_MAGIC, npy),
    (0, b"II*\x00", tiff),
    (0, b"MM\x00*", tiff),
    (0, b"II+\x00", tiff),  # BigTIFF
    (0, b"MM\x00+", tiff),
    (0, b"MATLAB", mat),  # before HDF5: a v7.3 .mat is HDF5 after a MATLAB header
    (0, b"\x89HDF\r\n\x1a\n", hdf5),
    (512, b"\x89HDF\r\n\x1a\n", hdf5),  # HDF5 behind a user block
    (0, b"SIMPLE  =", fits),
    (0, b"ENVI", envi),
)


def _sniff(path: Path) -> Reader | None:
    try:
        with open(path, "rb") as stream:
            head = stream.read(520)
    except OSError:
        return None
    for offset, magic, module in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            # Delmic's cathodoluminescence files are HDF5 in a layout only RosettaSciIO knows.
            return vendor if module is hdf5 and vendor.is_delmic(path) else module
    return None


def claims(path: Path) -> bool:
    """Whether ``path`` is, by its content or a suffix no other format uses, in a format read here.

    True for a damaged file too, so that reading it can say what is wrong. ENVI's
    suffixes are shared (Analyze 7.5 pairs a .hdr with an .img), so an ENVI file
    counts by the first word of its header only.
    """
    if path.is_dir():
        return path.suffix.lower() == ".zarr" or zarr.is_store(path)
    if not path.is_file():
        return False
    if _sniff(path) is not None:
        return True
    if vendor.ripple_header(path) is not None:
        return True
    header = envi.header_for(path)
    if header is not None:
        return header.is_file() and _sniff(header) is envi
    return path.suffix.lower() in SUPPORTED_SUFFIXES and path.suffix.lower() not in envi.SUFFIXES


def reader_for(path: Path) -> Reader:
    """The module that reads ``path``, which must exist.

    Raises
    ------
    InputError
        If neither the content nor the suffix is a supported format.
    """
    if path.is_dir():
        # zarr is the only format that is a folder; it says if the folder is not a store.
        named = next((m for m in READERS if path.suffix.lower() in m.SUFFIXES), zarr)
        if named is not zarr and not zarr.is_store(path):
            raise InputError(
                f"{path.name} is a folder, not a {path.suffix} file; give the path of the file "
                "itself (the only folders read are zarr stores)"
            )
        return zarr
    module = _sniff(path)
    if module is not None:
        return module
    # Raw ENVI and Ripple data have no signature: the header beside them says what they are.
    if envi.header_for(path) is not None:
        return envi
    if vendor.ripple_header(path) is not None:
        return vendor
    suffix = path.suffix.lower()
    module = next((m for m in READERS if suffix in m.SUFFIXES), None)
    if module is not None:
        return module
    raise InputError(
        f"{path.name} is not a format napari-deepcube reads (suffix {path.suffix or 'none'!r}); "
        f"supported: {', '.join(SUPPORTED_SUFFIXES)} (ENVI raw files need their .hdr beside "
        "them); convert the cube to one of these, e.g. .npy or .tif"
    )


def writer_for(path: Path) -> Writer:
    """The module that writes ``path``, chosen by its suffix."""
    module = WRITERS.get(path.suffix.lower())
    if module is None:
        raise InputError(
            f"cannot write {path.name}: cubes are written as {', '.join(WRITERS)}; "
            "choose one of these suffixes"
        )
    return module
