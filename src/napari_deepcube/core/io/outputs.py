"""Writing outputs without ever losing a user's data.

Every file or folder this package writes goes through :func:`atomic_write`:
the content is written to a temporary path beside the target and moved into
place only when it is complete. Inside :func:`output_transaction` the moves
wait until every output of the run has been written, then happen together
(and are undone together if one of them fails), so a run that fails late
leaves the outputs of an earlier run as they were.

An output is refused before anything is written when it is an existing
folder (a file output) or anything other than a store of the same kind (a
folder output), when it is one of the run's inputs (compared by file
identity, so through links too) or lies inside an input folder, or when two
outputs of one run are the same file. Temporaries are removed on every exit
Python sees, including Ctrl-C and, in the command line, SIGTERM. New files and
folders get the user's umask, like any file the user creates.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

#: Suffix of every temporary this package creates beside an output.
TEMPORARY_SUFFIX = ".deepcube-tmp"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode, or the same resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies inside the existing folder ``folder``."""
    if not folder.is_dir():
        return False
    return folder.resolve() in path.resolve().parents


def check_output(
    path: Path,
    *,
    inputs: Iterable[Path] = (),
    directory: bool = False,
    is_replaceable: Callable[[Path], bool] | None = None,
) -> None:
    """Raise InputError unless writing ``path`` can neither lose data nor fail on its folder.

    Parameters
    ----------
    path
        The output.
    inputs
        Files and folders the run reads; the output may be none of them nor inside one.
    directory
        True for an output that is a folder (a zarr store).
    is_replaceable
        For a folder output: True for an existing folder that may be replaced
        (a store of the same kind); any other existing folder or file is refused.
    """
    path = Path(path)
    for source in inputs:
        source = Path(source)
        if _same_file(path, source) or _inside(path, source) or _inside(source, path):
            relation = "is" if _same_file(path, source) else "holds or lies inside"
            raise InputError(
                f"the output {path} {relation} the input {source}, which would be overwritten; "
                "choose another output name"
            )
    if directory:
        if not _may_replace_folder(path, is_replaceable):
            raise InputError(
                f"{path} exists and is not a store this command wrote; it is left alone: choose "
                "another name, or remove it first"
            )
    elif path.is_dir():
        raise InputError(
            f"the output {path} is an existing folder; it is left alone: give a file name "
            f"such as {path / ('labels' + (path.suffix or '.tif'))}"
        )
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: the folder {path.parent} is not writable; choose another")


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """:func:`check_output` on each file output of a run, and :func:`check_distinct` on them all."""
    outputs, inputs = list(outputs), list(inputs)
    for path in outputs:
        check_output(path, inputs=inputs)
    check_distinct(outputs)


def _may_replace_folder(path: Path, is_replaceable: Callable[[Path], bool] | None) -> bool:
    """True when nothing is at ``path``, or a folder that ``is_replaceable`` accepts."""
    if not (path.exists() or path.is_symlink()):
        return True
    return path.is_dir() and not path.is_symlink() and is_replaceable is not None and is_replaceable(path)


def check_distinct(paths: Iterable[Path]) -> None:
    """Raise InputError when two of the outputs ``paths`` are the same file."""
    seen: list[Path] = []
    for path in map(Path, paths):
        twin = next((other for other in seen if _same_file(path, other)), None)
        if twin is not None:
            raise InputError(
                f"two outputs are the same file ({twin} and {path}); give each output its own name"
            )
        seen.append(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _new_temporary(target: Path, directory: bool) -> Path:
    """Create an empty file (or folder) beside ``target`` with the umask's permissions."""
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        try:
            if directory:
                os.mkdir(temporary, 0o777)
            else:
                os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return temporary
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(
                f"cannot write {target.name} in {target.parent} ({_reason(exc)}); choose a writable folder"
            ) from exc


@dataclass
class _Staged:
    target: Path
    temporary: Path
    directory: bool
    is_replaceable: Callable[[Path], bool] | None
    backup: Path | None = None
    moved: bool = False

    def check_target(self) -> None:
        """Raise OSError when what is at the target now may not be replaced (it appeared during the run)."""
        if self.directory:
            if not _may_replace_folder(self.target, self.is_replaceable):
                raise FileExistsError(errno.EEXIST, "a file or folder appeared there", str(self.target))
        elif self.target.is_dir() and not self.target.is_symlink():
            raise IsADirectoryError(errno.EISDIR, "a folder appeared there", str(self.target))

    def undo(self) -> None:
        """Put the target back as it was before :meth:`OutputTransaction.commit`; best effort."""
        if self.moved:
            os.replace(self.target, self.temporary)
            self.moved = False
        if self.backup is not None:
            os.replace(self.backup, self.target)
            self.backup = None


@dataclass
class OutputTransaction:
    """Outputs written to temporaries and moved into place together by :meth:`commit`.

    Use through :func:`output_transaction`.
    """

    inputs: tuple[Path, ...] = ()
    staged: list[_Staged] = field(default_factory=list)

    def stage(
        self,
        target: Path,
        *,
        directory: bool = False,
        is_replaceable: Callable[[Path], bool] | None = None,
    ) -> Path:
        """A new temporary for ``target``; it becomes ``target`` when the transaction commits.

        Parameters
        ----------
        target, directory, is_replaceable
            As in :func:`check_output`.

        Raises
        ------
        InputError
            If :func:`check_output` refuses ``target``, or it is another output
            of this transaction.
        """
        target = Path(target)
        check_output(target, inputs=self.inputs, directory=directory, is_replaceable=is_replaceable)
        check_distinct([*(item.target for item in self.staged), target])
        staged = _Staged(target, _new_temporary(target, directory), directory, is_replaceable)
        self.staged.append(staged)
        return staged.temporary

    def commit(self) -> None:
        """Move every temporary onto its target; on any failure restore every target as it was.

        Raises
        ------
        InputError
            If a move fails; then no target has changed.
        """
        with _signals_deferred():
            done: list[_Staged] = []
            failed: _Staged | None = None
            try:
                for failed in self.staged:
                    failed.check_target()
                    if failed.target.exists() or failed.target.is_symlink():
                        failed.backup = failed.target.with_name(
                            f".{failed.target.name}.{secrets.token_hex(4)}.old{TEMPORARY_SUFFIX}"
                        )
                        os.replace(failed.target, failed.backup)
                    done.append(failed)
                    os.replace(failed.temporary, failed.target)
                    failed.moved = True
            except BaseException as exc:
                self._undo(done)
                if not isinstance(exc, OSError) or failed is None:
                    raise
                raise InputError(
                    f"cannot write {failed.target} ({_reason(exc)}); no output was changed: check the "
                    "free space and that the folder is writable"
                ) from exc
            for item in done:
                if item.backup is not None:
                    _remove(item.backup)
                    item.backup = None

    @staticmethod
    def _undo(done: list[_Staged]) -> None:
        """Undo the moves of ``done``, latest first; one that fails does not stop the others."""
        for item in reversed(done):
            try:
                item.undo()
            except OSError:
                continue  # its backup stays beside the target, named .<name>.<hex>.old.deepcube-tmp

    def discard(self) -> None:
        """Remove every temporary not yet moved into place; never a backup of a user's file."""
        for item in self.staged:
            if item.temporary.exists() or item.temporary.is_symlink():
                _remove(item.temporary)


_ACTIVE: ContextVar[OutputTransaction | None] = ContextVar("deepcube_output_transaction", default=None)


@contextmanager
def output_transaction(inputs: Iterable[Path] = ()) -> Iterator[OutputTransaction]:
    """Group the :func:`atomic_write` calls of the block: all of them land, or none.

    Parameters
    ----------
    inputs
        Files and folders the run reads, which no output may overwrite.
    """
    transaction = OutputTransaction(tuple(Path(p) for p in inputs))
    token = _ACTIVE.set(transaction)
    try:
        yield transaction
        transaction.commit()
    finally:
        _ACTIVE.reset(token)
        transaction.discard()


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    directory: bool = False,
    is_replaceable: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces ``path`` once the block succeeds.

    Inside :func:`output_transaction` the replacement waits for the whole
    transaction. The temporary lives in the target's folder, so the final move
    is a rename on one file system: nobody sees a half-written file.

    Parameters
    ----------
    path, directory, is_replaceable
        As in :func:`check_output`.

    Raises
    ------
    InputError
        If :func:`check_output` refuses ``path``, it is another output of the
        transaction, or writing it fails with an OSError.
    """
    path = Path(path)
    with _writing(path):
        active = _ACTIVE.get()
        if active is not None:
            yield active.stage(path, directory=directory, is_replaceable=is_replaceable)
            return
        with output_transaction() as transaction:
            yield transaction.stage(path, directory=directory, is_replaceable=is_replaceable)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Report a failed write of ``path`` (a full disk, a lost network share) as an InputError."""
    try:
        yield
    except OSError as exc:
        raise InputError(
            f"cannot write {path.name} ({_reason(exc)}); check the free space and that the folder is writable"
        ) from exc


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs (main thread only), so a rename set stays whole."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
