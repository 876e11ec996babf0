"""A lazily read cube that its reader decodes on every read, decoded once into a private raw file.

RosettaSciIO reads a JEOL .pts or a Bruker .bcf lazily as a dask array whose
chunks decode the file's X-ray events afresh on every read: a .bcf is one
chunk, so every band of rows read decodes the whole cube, and a .pts is
chunks of 406 pixels by 406 channels, 9 s for each pass over the 512 x 512
test file. A run reads a cube several times (its valid pixels, the training
sample, the refinement sample, the labels) and napari reads it for every
slice it shows. Decoding it once into a raw file in a private temporary
folder, and reading that through a :class:`~._mapped.MappedArray` from then
on, costs one pass and keeps memory flat. The folder goes when the last array
over it does, or at exit.

The copy is decoded by bands of whole rows, as a run's passes read: RosettaSciIO
decodes only the events of the rows asked for, while a whole 406-pixel chunk
of the .pts costs about 2 s. A cube of one chunk (a .bcf) is decoded whole,
once, as its reader always does.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import reading
from ._lazy import row_blocks
from ._mapped import MappedArray

#: Room left on the temporary folder's disk besides the decoded copy: where there
#: is less, the cube stays as its reader gives it (decoded on every read).
SPARE_BYTES = 1024**3


class _Folder:
    """A private temporary folder (mode 0700), removed when this object is collected or at exit."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="deepcube-decoded-"))
        self.remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)


def decoded_once(array: Any, path: Path, what: str) -> MappedArray | None:
    """The dask ``array`` read from ``path`` (a ``what``), decoded into a temporary raw file.

    Returns None, and writes nothing, where the temporary folder's disk has
    less room than the cube plus :data:`SPARE_BYTES`.
    """
    dtype = np.dtype(array.dtype).newbyteorder("=")
    shape = tuple(int(n) for n in array.shape)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if shutil.disk_usage(tempfile.gettempdir()).free < nbytes + SPARE_BYTES:
        return None
    folder = _Folder()
    filename = folder.path / "cube.raw"
    try:
        bands = [slice(None)] if array.npartitions == 1 else row_blocks(shape, dtype.itemsize)
        # Written in order, so the file is the cube in C order; each band leaves memory once written.
        with open(filename, "wb") as raw, reading(path, what, extra=(Exception,)):
            for band in bands:
                raw.write(np.ascontiguousarray(array[band].compute(), dtype=dtype).tobytes())
    except BaseException:
        folder.remove()
        raise
    return MappedArray(str(filename), dtype, shape, keep=folder)
