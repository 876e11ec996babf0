"""Run a function off the GUI thread when it may be slow, on it when it is not.

A result that arrives after its widget was closed is dropped: calling into a
deleted Qt widget raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject

_T = TypeVar("_T")

#: Above this many values (pixels x channels) read from an eager cube, work
#: goes to a thread: about 0.1 s of numpy on a laptop.
BACKGROUND_VALUES = 20_000_000


def alive(widget: QObject) -> bool:
    """False once the Qt object behind ``widget`` has been deleted."""
    try:
        widget.objectName()
    except RuntimeError:
        return False
    return True


def run(
    function: Callable[[], _T],
    done: Callable[[_T], Any],
    *,
    background: bool,
    owner: QObject,
) -> None:
    """Call ``done(function())``, in a napari thread worker when ``background``.

    ``done`` is skipped when ``owner`` (the widget that asked) was closed in
    the meantime. Errors in the worker reach napari's notifications, as the
    worker's own do.
    """
    if not background:
        done(function())
        return

    def deliver(result: _T) -> None:
        if alive(owner):
            done(result)

    create_worker(function, _start_thread=True, _connect={"returned": deliver})
