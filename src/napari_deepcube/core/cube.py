"""The datacube: a spectral image with its spectral axis and valid-pixel mask."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InputError
from .spectral import SpectralAxis

#: Rows of pixels read at a time when a pass over the whole cube is needed.
#: Sized so that one block of a 4096-channel float64 cube stays near 64 MB.
DEFAULT_BLOCK_PIXELS = 2048


def is_lazy_array(array: Any) -> bool:
    """True for arrays that load on demand (memmap, dask, zarr, h5py datasets)."""
    return isinstance(array, np.memmap) or not isinstance(array, np.ndarray)


@dataclass(frozen=True)
class Datacube:
    """A spectral image held in (H, W, C) order, spectral axis last.

    Build one with :meth:`from_array` (which validates and computes the mask)
    rather than with the constructor.

    Parameters
    ----------
    data
        Array of shape (H, W, C): a numpy array, a numpy memmap, or a lazy
        array (dask, zarr, h5py dataset) that supports slicing and ``shape``.
    axis
        The spectral axis: a coordinate per channel, its unit and label
        (also read as ``spectral_values``, ``spectral_unit``, ``spectral_label``).
    mask
        Valid pixels, shape (H, W): False where more than half of the
        channels are NaN/Inf or the spectrum is all zero. Masked pixels get
        label 0; isolated NaN/Inf values of valid pixels are read as zero.
    name
        Short name for display and reports (usually the file stem).
    metadata
        Free-form facts from the reader (source path, format, calibration).
    variance
        The noise variance of every voxel, (H, W, C) like ``data`` (eager or
        lazy, read in step with it), or None. A FITS cube's STAT extension: the
        flux features are then whitened by each pixel's own noise
        (:mod:`.variance`). Values that are not positive and finite mark voxels
        of unknown noise.
    """

    data: Any
    axis: SpectralAxis
    mask: np.ndarray
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    variance: Any = None

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        spectral_axis: int = -1,
        spectral_values: Any = None,
        spectral_unit: str | None = None,
        spectral_label: str | None = None,
        name: str = "",
        metadata: dict[str, Any] | None = None,
        mask: np.ndarray | None = None,
        variance: Any = None,
    ) -> Datacube:
        """Validate ``array`` and wrap it as a datacube.

        Parameters
        ----------
        array
            A 3-D numeric array, eager or lazy.
        spectral_axis
            Which axis of ``array`` is spectral; it is moved last.
        spectral_values
            Channel coordinates; defaults to the channel index.
        spectral_unit, spectral_label
            Unit and name of the spectral axis; default to ``"channel"``.
        name, metadata
            Stored as given.
        mask
            Extra mask (H, W), True = keep, combined with the computed one.
        variance
            The variance of every voxel, an array of ``array``'s shape and
            axis order (eager or lazy), or None.

        Raises
        ------
        InputError
            If the array is not 3-D, not numeric, has an empty axis, or has
            spectral values of the wrong length, or the variance is not an
            array of numbers of the array's shape.
        """
        stored_shape = tuple(np.shape(array))
        array = _spectral_axis_last(array, spectral_axis)
        if variance is not None:
            variance = _checked_variance(variance, stored_shape, spectral_axis)
        height, width, n_channels = array.shape
        if min(height, width, n_channels) == 0:
            raise InputError(f"the cube has an empty axis (shape {tuple(array.shape)})")
        if n_channels < 2:
            raise InputError(
                f"the spectral axis has only {n_channels} channel; if the cube is stored "
                "(C, H, W), pass --spectral-axis 0"
            )
        axis = SpectralAxis.build(n_channels, spectral_values, spectral_unit, spectral_label)
        info = dict(metadata or {})
        valid, n_nonfinite, n_partial, n_empty = _valid_mask(array)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (height, width):
                raise InputError(f"the mask has shape {mask.shape} but the image is {(height, width)}")
            valid &= mask
        info.update(
            n_nonfinite_pixels=n_nonfinite, n_partly_nonfinite_pixels=n_partial, n_empty_pixels=n_empty
        )
        if not valid.any():
            raise InputError(
                "every pixel is empty (all zero), masked, or holds NaN/Inf; "
                "check that the right dataset and spectral axis were read"
            )
        return cls(array, axis, valid, name, info, variance)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C)."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W)."""
        return self.shape[0], self.shape[1]

    @property
    def n_channels(self) -> int:
        """Number of spectral channels C."""
        return self.shape[2]

    @property
    def n_valid(self) -> int:
        """Number of pixels that take part in the segmentation."""
        return int(self.mask.sum())

    @property
    def is_lazy(self) -> bool:
        """True when the data are read from disk on demand (through a wrapper that moves them, too)."""
        return bool(getattr(self.data, "reads_from_disk", is_lazy_array(self.data)))

    @property
    def nbytes_float32(self) -> int:
        """Size of the cube held in memory as float32."""
        h, w, c = self.shape
        return h * w * c * 4

    @property
    def spectral_values(self) -> np.ndarray:
        """Coordinate of each channel, shape (C,) (see :attr:`axis`)."""
        return self.axis.values

    @property
    def spectral_unit(self) -> str:
        """Unit of the spectral axis (see :attr:`axis`)."""
        return self.axis.unit

    @property
    def spectral_label(self) -> str:
        """What the spectral axis measures (see :attr:`axis`)."""
        return self.axis.label

    @property
    def axis_title(self) -> str:
        """Axis title for plots, e.g. ``"Energy (keV)"``."""
        return self.axis.title

    def with_mask(self, mask: np.ndarray) -> Datacube:
        """A copy whose mask is the current one AND ``mask`` (H, W): only those pixels are segmented.

        Raises
        ------
        InputError
            If ``mask`` is not of the image's shape, or leaves no valid pixel.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.image_shape:
            raise InputError(f"the mask has shape {mask.shape} but the image is {self.image_shape}")
        combined = self.mask & mask
        if not combined.any():
            raise InputError(
                f"the mask's {int(mask.sum())} pixels are all empty (all zero) or NaN in the cube; "
                "mark pixels that hold spectra"
            )
        return replace(self, mask=combined)

    def without_variance(self) -> Datacube:
        """A copy without per-voxel variances: its fluxes are whitened by the noise estimated per channel."""
        return replace(self, variance=None)

    def iter_blocks(self, block_pixels: int = DEFAULT_BLOCK_PIXELS) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (row slice, block) pairs covering the cube, block of shape (r, W, C).

        Blocks are whole rows so that a lazy array is read in its natural order;
        each block is a float32 numpy array.
        """
        yield from _iter_row_blocks(self.data, block_pixels)

    def variance_rows(self, rows: slice) -> np.ndarray | None:
        """Variances of a band of rows (r, W, C) float32, read as :meth:`iter_blocks` reads spectra.

        None when the cube has no variances.
        """
        if self.variance is None:
            return None
        return np.asarray(self.variance[rows], dtype=np.float32)

    def spectra(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Spectra of the pixels at (rows, cols), shape (n, C), float32.

        Reads only the rows that hold the pixels, so sampling a lazy cube costs
        a fraction of a full pass.
        """
        return _pixels(self.data, rows, cols)

    def variances(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        """Variances of the pixels at (rows, cols), (n, C) float32, read as :meth:`spectra`; None without."""
        return None if self.variance is None else _pixels(self.variance, rows, cols)


def _pixels(array: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The (n, C) float32 values of ``array`` (H, W, C) at (rows, cols); a lazy array band by band.

    The pixels of a lazy array are read in bands of rows no larger than a
    block of :meth:`Datacube.iter_blocks`, one read per band that holds any:
    a reader pays per call (a JEOL .pts decodes its events for each), so rows
    one by one cost several times a whole pass.
    """
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    if not is_lazy_array(array):
        return np.asarray(array[rows, cols], dtype=np.float32)
    out = np.empty((rows.size, array.shape[2]), dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    bands = sorted_rows // _rows_per_block(array.shape[1], DEFAULT_BLOCK_PIXELS)
    starts = np.flatnonzero(np.r_[True, bands[1:] != bands[:-1]])
    ends = np.r_[starts[1:], rows.size]
    for start, end in zip(starts, ends, strict=True):
        picks = order[start:end]
        first, last = int(sorted_rows[start]), int(sorted_rows[end - 1])
        band = np.asarray(array[first : last + 1])
        out[picks] = band[rows[picks] - first, cols[picks]]
    return out


def _checked_variance(variance: Any, cube_shape: tuple[int, ...], spectral_axis: int) -> Any:
    """``variance`` checked to be numbers of the stored cube's shape, its spectral axis moved last."""
    if not hasattr(variance, "shape") or not hasattr(variance, "dtype"):
        variance = np.asarray(variance)
    if tuple(variance.shape) != cube_shape:
        raise InputError(
            f"the variances have shape {tuple(variance.shape)} but the cube {cube_shape}; "
            "give one variance per voxel of the cube"
        )
    if np.dtype(variance.dtype).kind not in "biuf":
        raise InputError(f"the variances hold {np.dtype(variance.dtype)} values, not numbers")
    return _spectral_axis_last(variance, spectral_axis)


def _spectral_axis_last(array: Any, spectral_axis: int) -> Any:
    """``array`` checked to be a 3-D numeric cube, its spectral axis moved last (lazily when lazy)."""
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        array = np.asarray(array)
    shape = tuple(array.shape)
    if len(shape) != 3:
        raise InputError(
            f"expected a 3-D cube (height, width, channels), got {len(shape)}-D "
            f"with shape {shape}; give a single spectral image, e.g. cube[..., 0:C]"
        )
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biuf":
        raise InputError(
            f"the cube holds {dtype} values, not numbers; convert it to an "
            "integer or floating-point array first"
        )
    if not -3 <= spectral_axis < 3:
        raise InputError(
            f"spectral axis {spectral_axis} does not exist in a 3-D cube; "
            "choose 0, 1 or 2 (or -1 for the last axis)"
        )
    axis = spectral_axis % 3
    if axis == 2:
        return array
    order = [a for a in range(3) if a != axis] + [axis]
    return array.transpose(order) if is_lazy_array(array) else np.transpose(array, order)


def neighbour_pixels(
    image_shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of each pixel's right-hand neighbour (left-hand on the last column; below in one)."""
    height, width = image_shape
    if width == 1:
        return np.where(rows + 1 < height, rows + 1, rows - 1).clip(0), cols
    return rows, np.where(cols + 1 < width, cols + 1, cols - 1)


def finite_or_zero(spectra: np.ndarray) -> np.ndarray:
    """``spectra`` with NaN and Inf read as zero (see :attr:`Datacube.mask`), to be read, not written.

    ``spectra`` itself when every value is finite, as in most cubes: a copy
    the size of a sample costs more than the check. Otherwise a copy and one
    masked write, seven times faster than ``np.nan_to_num``, which makes a
    pass for each kind of value it replaces.
    """
    values = np.asarray(spectra)
    finite = np.isfinite(values)
    if finite.all():
        return values
    values = values.copy()
    values[~finite] = 0
    return values


def _iter_row_blocks(
    data: Any, block_pixels: int, dtype: Any = np.float32
) -> Iterator[tuple[slice, np.ndarray]]:
    height, width = data.shape[0], data.shape[1]
    rows_per_block = _rows_per_block(width, block_pixels)
    for start in range(0, height, rows_per_block):
        rows = slice(start, min(start + rows_per_block, height))
        yield rows, np.asarray(data[rows], dtype=dtype)


def _rows_per_block(width: int, block_pixels: int) -> int:
    """Whole rows of ``width`` pixels in a block of at most ``block_pixels`` (at least one row)."""
    return max(1, block_pixels // max(width, 1))


def _check_float32_range(block: np.ndarray) -> None:
    """Raise InputError when finite values of ``block`` would overflow float32, the type we compute in."""
    largest = float(np.max(np.abs(block), initial=0.0, where=np.isfinite(block)))
    if largest > float(np.finfo(np.float32).max):
        raise InputError(
            f"the cube holds values up to {largest:.3g}, beyond the float32 range (3.4e38) the "
            "segmentation computes in; rescale it (e.g. multiply by 1e-30) and save it again"
        )


def _valid_mask(data: Any) -> tuple[np.ndarray, int, int, int]:
    """Mask of usable pixels, with counts of left-out and partly non-finite pixels.

    A pixel is left out when more than half of its channels are NaN/Inf (a
    dead or flagged spectrum) or when it is all zero. Fewer non-finite
    channels (flagged voxels at a MUSE cube's wavelength edges, a hot channel)
    are read as zero, so one bad voxel does not cost the pixel.

    Returns
    -------
    valid, n_nonfinite, n_partly_nonfinite, n_empty
    """
    height, width = data.shape[0], data.shape[1]
    valid = np.empty((height, width), dtype=bool)
    n_nonfinite = n_partial = n_empty = 0
    floating = np.dtype(data.dtype).kind == "f"
    wider_than_float32 = floating and np.dtype(data.dtype).itemsize > 4
    # Read in the stored type: integer cubes need no conversion to be checked.
    for rows, block in _iter_row_blocks(data, 8 * DEFAULT_BLOCK_PIXELS, dtype=None):
        if wider_than_float32:
            _check_float32_range(block)
        if floating:
            bad = (~np.isfinite(block)).sum(axis=-1)
            nonzero = np.any((block != 0) & np.isfinite(block), axis=-1)
        else:
            bad = np.zeros(block.shape[:2], dtype=np.int64)
            nonzero = np.any(block != 0, axis=-1)
        finite = bad * 2 <= block.shape[-1]
        n_nonfinite += int((~finite).sum())
        n_partial += int((finite & (bad > 0)).sum())
        n_empty += int((finite & ~nonzero).sum())
        valid[rows] = finite & nonzero
    return valid, n_nonfinite, n_partial, n_empty
