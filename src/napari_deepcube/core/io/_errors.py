"""Turning a library's exception while reading a file into one InputError, and optional imports."""

from __future__ import annotations

import importlib
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ..errors import InputError

#: The pip extras that provide optional readers: astropy, zarr, dask ("formats");
#: RosettaSciIO, GPL-3.0+, kept apart so that the rest stays BSD ("vendor").
FORMATS_EXTRA = "formats"
VENDOR_EXTRA = "vendor"


#: Exceptions that third-party readers raise on damaged or unexpected files.
#: Each reader adds its library's own exception types where it calls the
#: library. KeyError, IndexError and TypeError are left out on purpose: caught
#: everywhere, they would turn a bug of ours into a "damaged file" message.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    UnicodeDecodeError,
)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextmanager
def reading(
    path: Path,
    what: str,
    *,
    extra: tuple[type[BaseException], ...] = (),
    fix: str = "check that the file is complete and not damaged (copy or export it again)",
) -> Iterator[None]:
    """Turn a third-party library's exception while reading ``path`` into an InputError.

    Parameters
    ----------
    path
        The file being read.
    what
        The format, as in "could not be read as <what>".
    extra
        The library's own exception types (astropy, scipy, zarr...).
    fix
        What the user should do.
    """
    try:
        yield
    except InputError:
        raise
    except MemoryError as exc:
        raise InputError(
            f"{path.name} does not fit in memory; read it lazily, or save the cube as .zarr or .npy first"
        ) from exc
    except (*READ_ERRORS, *extra) as exc:
        raise InputError(f"{path.name} could not be read as {what} ({_reason(exc)}); {fix}") from exc


def import_optional(path: Path, module: str, package: str, extra: str = FORMATS_EXTRA) -> ModuleType:
    """Import an optional dependency needed for ``path``, or say which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"{path.name}: this format needs the optional package {package!r}; install it with "
            f"`pip install napari-deepcube[{extra}]`"
        ) from exc
