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
over it does, or at exit; one left by a process that was killed goes when the
next copy is made.

The copy is decoded by bands of whole rows, as a run's passes read: RosettaSciIO
decodes only the events of the rows asked for, while a whole 406-pixel chunk
of the .pts costs about 2 s. A cube of one chunk (a .bcf) is decoded whole,
once, as its reader always does.

No copy is made where it would not help: on a temporary folder held in memory
(tmpfs, as /tmp is on many Linux systems and cluster nodes, whose pages count
against a job's memory), or where its disk lacks room. Nor where writing it
fails (a full disk, too little memory for a one-chunk cube): the cube then
stays as its reader gives it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import reading
from ._lazy import row_blocks
from ._mapped import MappedArray

#: Room left on the temporary folder's disk besides the decoded copy.
SPARE_BYTES = 1024**3
#: Start of each copy's folder name, followed by the process id of its maker.
_PREFIX = "deepcube-decoded-"
#: File systems held in memory.
_IN_MEMORY = ("tmpfs", "ramfs")


class _Folder:
    """A private temporary folder (mode 0700), removed when this object is collected or at exit."""

    def __init__(self, root: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root))
        self.remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)


def decoded_once(array: Any, path: Path, what: str) -> MappedArray | None:
    """The dask ``array`` read from ``path`` (a ``what``), decoded into a temporary raw file.

    Returns None, leaving nothing behind, where no copy is made (see the module).

    Raises
    ------
    InputError
        If the reader fails on the file.
    """
    dtype = np.dtype(array.dtype).newbyteorder("=")
    shape = tuple(int(n) for n in array.shape)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    root = Path(tempfile.gettempdir())
    _remove_abandoned(root)
    if _in_memory(root) or shutil.disk_usage(root).free < nbytes + SPARE_BYTES:
        return None
    folder = _Folder(root)
    filename = folder.path / "cube.raw"
    bands = [slice(None)] if array.npartitions == 1 else row_blocks(shape, dtype.itemsize)
    try:
        # Written in order, so the file is the cube in C order; each band leaves memory once written.
        with open(filename, "wb") as raw:
            for band in bands:
                with reading(path, what, extra=(Exception,)):
                    values = array[band].compute()
                np.ascontiguousarray(values, dtype=dtype).tofile(raw)
    except (OSError, MemoryError):
        folder.remove()
        return None
    except BaseException:
        folder.remove()
        raise
    return MappedArray(str(filename), dtype, shape, keep=folder)


def _in_memory(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system held in memory (Linux; False where unknown)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            table = [line.split()[1:3] for line in mounts]
    except OSError:
        return False
    resolved = folder.resolve()
    holding = [(Path(point), kind) for point, kind in table if resolved.is_relative_to(point)]
    return bool(holding) and max(holding, key=lambda mount: len(mount[0].parts))[1] in _IN_MEMORY


def _remove_abandoned(root: Path) -> None:
    """Remove the copies in ``root`` of this user's processes that ended without removing them (POSIX)."""
    if os.name != "posix":
        return
    for folder in root.glob(f"{_PREFIX}*-*"):
        maker = folder.name[len(_PREFIX) :].split("-", 1)[0]
        try:
            owner = folder.stat().st_uid
        except OSError:  # another run removed it meanwhile
            continue
        if maker.isdigit() and owner == os.getuid() and not _running(int(maker)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's, which may not be signalled, does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
