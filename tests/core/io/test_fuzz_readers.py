"""Damaged files of every format give a cube or one InputError, never another exception.

Each test writes a small valid file once, then lets hypothesis damage a copy
of it (bytes overwritten at drawn offsets, the file cut at a drawn length,
ENVI header values and zarr metadata entries replaced by drawn values, zarr
chunks corrupted or deleted) and checks that :func:`can_read` answers, and that
:func:`read_cube` followed by reading the whole array either gives a cube or
raises :class:`InputError` with one line naming the file. Any other exception
(or warning: pytest turns them into errors) is a reader bug.
``DEEPCUBE_FUZZ_EXAMPLES`` raises the number of examples per format for a
longer hunt; the default keeps the file under a minute on two cores.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, list_datasets, read_cube

fits = pytest.importorskip("astropy.io.fits")
zarr = pytest.importorskip("zarr")

EXAMPLES = int(os.environ.get("DEEPCUBE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
)

#: (H, W, C) of every valid file, small so that the header is most of the file.
SHAPE = (4, 5, 6)
CUBE = np.arange(1, 1 + np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)


def _npy(folder: Path) -> Path:
    path = folder / "cube.npy"
    np.save(path, CUBE.astype(np.float32))
    return path


def _npz(folder: Path) -> Path:
    path = folder / "cube.npz"
    np.savez(path, cube=CUBE, energy_keV=np.linspace(1.0, 6.0, SHAPE[2]))
    return path


def _tif(folder: Path) -> Path:
    """A (C, H, W) stack with our JSON calibration in its description."""
    path = folder / "cube.tif"
    description = json.dumps({"spectral_values": list(range(SHAPE[2])), "spectral_unit": "nm"})
    tifffile.imwrite(
        path, np.moveaxis(CUBE, -1, 0), photometric="minisblack", description=description, metadata=None
    )
    return path


def _tif_zlib(folder: Path) -> Path:
    """A compressed, tiled stack as tifffile writes it by default (ImageJ-like shape JSON)."""
    path = folder / "cube.tif"
    tifffile.imwrite(
        path, np.moveaxis(CUBE, -1, 0), photometric="minisblack", compression="zlib", tile=(16, 16)
    )
    return path


#: Text attributes of the HDF5 files are fixed-length (np.bytes_), where h5py would
#: store a str as variable-length text in the file's global heap: the HDF5 library
#: itself crashes (segfault) or loops forever on some damaged global heaps, which no
#: reader can catch; kept out so that this suite cannot crash or hang.
def _h5(folder: Path) -> Path:
    path = folder / "cube.h5"
    with h5py.File(path, "w") as file:
        file["img"] = CUBE
        file["img"].attrs["spectral_values"] = np.linspace(400.0, 450.0, SHAPE[2])
        file["img"].attrs["spectral_unit"] = np.bytes_("nm")
    return path


def _hspy(folder: Path) -> Path:
    path = folder / "cube.hspy"
    with h5py.File(path, "w") as file:
        file.attrs.update(file_format=np.bytes_("HyperSpy"), file_format_version=np.bytes_("3.0"))
        signal = file.create_group("Experiments/spectrum")
        signal["data"] = CUBE
        for i, (navigate, units) in enumerate([(True, "nm"), (True, "nm"), (False, "keV")]):
            signal.create_group(f"axis-{i}").attrs.update(
                navigate=navigate,
                scale=0.5,
                offset=0.0,
                size=SHAPE[i],
                units=np.bytes_(units),
                name=np.bytes_(f"a{i}"),
            )
    return path


def _fits(folder: Path) -> Path:
    """A MUSE-like file: header-only primary, then DATA, STAT and DQ (λ, y, x)."""
    path = folder / "cube.fits"
    data = np.moveaxis(CUBE, -1, 0).astype(np.float32)
    header = fits.Header({"CTYPE3": "AWAV", "CUNIT3": "Angstrom", "CRVAL3": 4750.0, "CD3_3": 1.25})
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, header=header, name="DATA"),
            fits.ImageHDU(np.ones_like(data), name="STAT"),
            fits.ImageHDU(np.zeros(data.shape, np.int32), name="DQ"),
        ]
    ).writeto(path)
    return path


ENVI_FIELDS = {
    "samples": SHAPE[1],
    "lines": SHAPE[0],
    "bands": SHAPE[2],
    "header offset": 0,
    "data type": 12,
    "byte order": 0,
}


def _envi_header(fields: dict[str, object]) -> str:
    lines = [f"{key} = {value}" for key, value in fields.items()]
    return "ENVI\n" + "\n".join(lines) + "\ninterleave = bip\nwavelength = {1, 2, 3, 4, 5, 6}\n"


def _envi(folder: Path) -> Path:
    header = folder / "cube.hdr"
    header.write_text(_envi_header(ENVI_FIELDS))
    (folder / "cube.img").write_bytes(CUBE.astype("<u2").tobytes())
    return header


def _mat5(folder: Path) -> Path:
    path = folder / "cube.mat"
    scipy.io.savemat(path, {"cube": CUBE.astype(np.float64), "wavelength_nm": np.arange(6.0) + 400})
    return path


def _mat5_compressed(folder: Path) -> Path:
    """As MATLAB saves by default (v7): each variable a zlib-compressed element."""
    path = folder / "cube.mat"
    scipy.io.savemat(path, {"cube": CUBE, "nm": np.arange(6.0)}, do_compression=True)
    return path


def _mat73(folder: Path) -> Path:
    """A v7.3 file as MATLAB writes it: a 512-byte header, then HDF5, arrays transposed."""
    path = folder / "cube.mat"
    with h5py.File(path, "w", userblock_size=512) as file:
        file["cube"] = CUBE.T
        file["cube"].attrs["MATLAB_class"] = np.bytes_("uint16")
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    return path


def _zarr_store(folder: Path, zarr_format: int) -> Path:
    path = folder / "cube.zarr"
    # Two rows a chunk: three chunk files, so one can be damaged and the others not.
    store = zarr.create_array(
        str(path), shape=SHAPE, chunks=(2, 5, 6), dtype="uint16", zarr_format=zarr_format
    )
    store[...] = CUBE
    store.attrs["spectral_values"] = list(np.linspace(1.0, 6.0, SHAPE[2]))
    return path


def _zarr3(folder: Path) -> Path:
    return _zarr_store(folder, 3)


def _zarr2(folder: Path) -> Path:
    return _zarr_store(folder, 2)


# --------------------------------------------------------------------------- damage


def _edits(size: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    """Offsets and new byte values; half of them in the first 512 bytes, where headers are."""
    offset = st.one_of(st.integers(0, min(size, 512) - 1), st.integers(0, size - 1))
    return st.lists(st.tuples(offset, st.integers(0, 255)), min_size=1, max_size=8)


@st.composite
def damaged_bytes(draw: st.DrawFn, content: bytes) -> bytes:
    """``content`` with a few bytes overwritten, cut short, or both."""
    data = bytearray(content)
    how = draw(st.sampled_from(["overwrite", "truncate", "both"]))
    if how != "truncate":
        for offset, value in draw(_edits(len(data))):
            data[offset] = value
    if how != "overwrite":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


def _check(path: Path, lazy: bool | None) -> None:
    """The property: a cube whose data can be read, or one line naming the file; can_read answers."""
    assert isinstance(can_read(path), bool)
    try:
        list_datasets(path)
    except InputError:
        pass
    try:
        cube = read_cube(path, lazy=lazy)
    except InputError as error:
        message = str(error)
        # Every file here is cube.<suffix> (an ENVI image also cube.img).
        assert "cube." in message and "\n" not in message, message
        return
    values = np.asarray(cube.data)
    assert values.shape == cube.shape


def _fuzz_file(make: Callable[[Path], Path]) -> Callable[..., None]:
    """A test that damages the one file ``make`` writes."""
    with tempfile.TemporaryDirectory() as folder:
        original = make(Path(folder))
        content = original.read_bytes()
        name = original.name

    @FUZZ
    @given(damaged=damaged_bytes(content), lazy=st.sampled_from([None, True]))
    def test(damaged: bytes, lazy: bool | None) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(damaged)
            _check(path, lazy)

    return test


test_damaged_npy = _fuzz_file(_npy)
test_damaged_npz = _fuzz_file(_npz)
test_damaged_tiff = _fuzz_file(_tif)
test_damaged_compressed_tiff = _fuzz_file(_tif_zlib)
test_damaged_hdf5 = _fuzz_file(_h5)
test_damaged_hyperspy = _fuzz_file(_hspy)
test_damaged_fits = _fuzz_file(_fits)
test_damaged_mat_v5 = _fuzz_file(_mat5)
test_damaged_compressed_mat_v5 = _fuzz_file(_mat5_compressed)
test_damaged_mat_v73 = _fuzz_file(_mat73)


#: Values an ENVI header field may be damaged to: small, negative, or beyond any file.
_HEADER_VALUES = st.one_of(st.integers(-3, 20), st.integers(-(2**70), 2**70))


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(sorted(ENVI_FIELDS)), _HEADER_VALUES, max_size=3),
    raw_bytes=st.one_of(st.none(), st.integers(0, CUBE.nbytes - 1)),
    lazy=st.sampled_from([None, True]),
)
def test_damaged_envi_header(changes: dict[str, int], raw_bytes: int | None, lazy: bool | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        header = _envi(Path(folder))
        header.write_text(_envi_header({**ENVI_FIELDS, **changes}))
        if raw_bytes is not None:
            raw = Path(folder) / "cube.img"
            raw.write_bytes(raw.read_bytes()[:raw_bytes])
        _check(header, lazy)
        _check(Path(folder) / "cube.img", lazy)


@FUZZ
@given(content=st.data(), lazy=st.sampled_from([None, True]))
def test_damaged_envi_header_bytes(content: st.DataObject, lazy: bool | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        header = _envi(Path(folder))
        header.write_bytes(content.draw(damaged_bytes(header.read_bytes())))
        _check(header, lazy)


@FUZZ
@given(
    zarr_format=st.sampled_from([2, 3]),
    damage=st.data(),
    lazy=st.sampled_from([None, True]),
)
def test_damaged_zarr(zarr_format: int, damage: st.DataObject, lazy: bool | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = _zarr_store(Path(folder), zarr_format)
        files = sorted(p for p in store.rglob("*") if p.is_file())
        target = damage.draw(st.sampled_from(files), label="file")
        if damage.draw(st.booleans(), label="delete"):
            target.unlink()
        else:
            target.write_bytes(damage.draw(damaged_bytes(target.read_bytes()), label="content"))
        _check(store, lazy)


def _paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path in a JSON document."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    return [p for key, child in children for p in [(*path, key), *_paths(child, (*path, key))]]


#: JSON values a metadata entry may be damaged to (None deletes the entry).
_JSON_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.sampled_from(["", "abc", "<f8", "|O", "S3", "float64", "string", "bytes"]),
    st.just([]),
    st.just({}),
)


@FUZZ
@given(zarr_format=st.sampled_from([2, 3]), damage=st.data(), lazy=st.sampled_from([None, True]))
def test_damaged_zarr_metadata(zarr_format: int, damage: st.DataObject, lazy: bool | None) -> None:
    """Metadata that parses as JSON but holds wrong values: what byte flips rarely make."""
    with tempfile.TemporaryDirectory() as folder:
        store = _zarr_store(Path(folder), zarr_format)
        metadata = store / ("zarr.json" if zarr_format == 3 else ".zarray")
        document = json.loads(metadata.read_text())
        for _ in range(damage.draw(st.integers(1, 3), label="changes")):
            *parents, key = damage.draw(st.sampled_from(_paths(document)), label="entry")
            node = document
            for parent in parents:
                node = node[parent]
            value = damage.draw(_JSON_VALUES, label="value")
            if value is None and isinstance(node, dict):
                del node[key]
            else:
                node[key] = value
        metadata.write_text(json.dumps(document))
        _check(store, lazy)


def test_fuzz_files_are_valid_before_damage(tmp_path: Path) -> None:
    """Each file the fuzz tests damage reads back as the cube when intact."""
    makers = [_npy, _npz, _tif, _tif_zlib, _h5, _hspy, _fits, _envi, _mat5, _mat5_compressed, _mat73]
    makers += [_zarr3, _zarr2]
    for make in makers:
        folder = tmp_path / make.__name__
        folder.mkdir()
        cube = read_cube(make(folder))
        np.testing.assert_array_equal(np.asarray(cube.data), CUBE, err_msg=make.__name__)
