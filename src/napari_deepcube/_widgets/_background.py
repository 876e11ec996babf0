"""Run a function off the GUI thread when it may be slow, on it when it is not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from napari.qt.threading import create_worker

_T = TypeVar("_T")

#: Above this many values (pixels x channels) read from an eager cube, work
#: goes to a thread: about 0.1 s of numpy on a laptop.
BACKGROUND_VALUES = 20_000_000


def run(
    function: Callable[[], _T],
    done: Callable[[_T], Any],
    *,
    background: bool,
) -> None:
    """Call ``done(function())``, in a napari thread worker when ``background``.

    Errors in the worker reach napari's notifications, as the worker's own do.
    """
    if not background:
        done(function())
        return
    create_worker(function, _start_thread=True, _connect={"returned": done})
