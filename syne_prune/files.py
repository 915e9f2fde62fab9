"""Writing outputs safely: write failures as one line, atomic files, and a lock on a directory in use.

A failed write (read-only file system, no space left, permission denied, a path through a file) is a one-line
``SynePruneError`` naming the path and the cause (the CLI exits with code 2), raised by ``writing`` around the
writes of a command (temporary files it names are removed) or, for an ``OSError`` raised anywhere else, by the
CLI's top level (``write_failure``). Files are written under a temporary name and renamed into place, so a
failure leaves the previous version (and a later ``--resume`` continues from it).

A search, a super-network training, a recovery and a blackbox recording hold ``output_lock`` on their output
directory while they run: an exclusive ``fcntl.flock`` on ``OUTPUT/.lock``. The kernel releases it when the
process ends however it ends (``kill -9`` included), so a killed run leaves no stale lock; a second process on
the same directory is refused with a one-line ``SynePruneError``.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from syne_prune.errors import SynePruneError

LOCK_FILE = ".lock"
FULL_BELOW = 64 * 1024  # bytes free under which a write failure without an errno is taken for a full device

_CAUSES = {
    errno.ENOSPC: ("no space left on the device", "free space there or choose another --output"),
    errno.EDQUOT: ("disk quota exceeded", "free space there or choose another --output"),
    errno.EFBIG: ("file too large for the file system", "choose an --output on another file system"),
    errno.EROFS: ("the file system is read-only", "choose an --output on a writable file system"),
    errno.EACCES: ("permission denied", "choose an --output you may write to"),
    errno.EPERM: ("operation not permitted", "choose an --output you may write to"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "choose another --output"),
    errno.EISDIR: ("it is a directory", "choose another --output"),
}
# What torch.save and safetensors say when a write fails (they lose the errno on the way).
_WRITE_FAILED = re.compile(r"unexpected pos|file write failed|PytorchStreamWriter failed|Error while serializing|"
                           r"IoError|No space left|Read-only file system|Permission denied")
_OS_CODE = re.compile(r"(?:code: |os error |Errno )(\d+)")


def _blocking_file(path: Path) -> Path | None:
    """The nearest of ``path`` and its ancestors that exists, when it is not a directory (a directory was to be made there)."""
    for parent in [path, *path.parents]:
        if os.path.lexists(parent):
            return parent if not parent.is_dir() else None
    return None


def _cause(error: BaseException, path: Path) -> tuple[str, str]:
    """(cause, fix) of a failed write of ``path``."""
    code = error.errno if isinstance(error, OSError) else None
    if code is None:
        match = _OS_CODE.search(str(error))
        code = int(match.group(1)) if match else None
    if code is None:  # torch says only "unexpected pos": look at the device
        with contextlib.suppress(OSError, StopIteration):
            existing = next(p for p in [path, *path.parents] if p.is_dir())
            device = os.statvfs(existing)
            if device.f_bavail * device.f_frsize < FULL_BELOW:
                code = errno.ENOSPC
    blocking = _blocking_file(path) if code in (errno.EEXIST, errno.ENOTDIR, None) else None
    if blocking is not None:
        return f"'{blocking}' is a file, not a directory", "choose another --output"
    if code in _CAUSES:
        return _CAUSES[code]
    text = str(error).strip().splitlines()
    return (os.strerror(code) if code else (text[0] if text else type(error).__name__)), "check the path and the device"


def is_write_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed file operation: an ``OSError``, or a torch/safetensors error saying a write failed."""
    return isinstance(error, OSError) or (type(error).__name__ in ("RuntimeError", "SafetensorError")
                                          and bool(_WRITE_FAILED.search(str(error))))


def write_failure(error: BaseException, path: str | Path | None = None) -> SynePruneError:
    """The one-line error for the failed file operation ``error`` on ``path`` (the file the error names, else
    ``path``): "cannot write 'PATH' (CAUSE); FIX" ("cannot use" for a file that is not there)."""
    filename = getattr(error, "filename", None)
    if filename and path is not None and (Path(filename).name.startswith(".") or _blocking_file(Path(path)) is not None):
        filename = None  # a temporary or hidden file of the output (staging directory, .lock), or a file in its way: name the output
    target = Path(filename if filename else path if path is not None else ".")
    cause, fix = _cause(error, target)
    verb = "use" if isinstance(error, OSError) and error.errno in (errno.ENOENT, errno.EISDIR) else "write"  # (ENOENT: a read)
    return SynePruneError(f"cannot {verb} '{target}' ({cause}); {fix}")


@contextlib.contextmanager
def writing(path: str | Path, cleanup: Iterable[str | Path] = ()) -> Iterator[None]:
    """Run the block that writes ``path``; a failed write in it (``is_write_failure``) removes the ``cleanup``
    paths (temporary files or directories) and is raised as ``write_failure``. Other errors pass unchanged."""
    try:
        yield
    except SynePruneError:
        raise
    except Exception as error:  # noqa: BLE001 - OSError, RuntimeError (torch.save), SafetensorError
        if not is_write_failure(error):
            raise
        failure = write_failure(error, path)  # first: the cause is read off the device while it is still full
        for leftover in cleanup:
            remove(Path(leftover))
        raise failure from None


def remove(path: Path) -> None:
    """Remove a file or directory tree if it is there; errors are ignored (it is a clean-up)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Have ``write(tmp)`` write a temporary file beside ``path``, then rename it into place (the old file stays
    on failure). A failed write is a ``write_failure`` and leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")  # the suffix kept: pandas and matplotlib read the format from it
    with writing(path, cleanup=[tmp]):
        write(tmp)
        os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of ``text``."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def append_line(path: str | Path, text: str) -> None:
    """Append ``text`` (one or more whole lines) to ``path`` and flush it to disk; a failed write cuts the file
    back to its old length (no half line) and is a ``write_failure``."""
    path = Path(path)
    with writing(path), open(path, "a", newline="") as handle:
        size = handle.tell()
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
            raise


def holds_content(directory: Path) -> bool:
    """Whether ``directory`` exists and holds anything but the lock file (or is not a directory)."""
    return directory.exists() and (not directory.is_dir() or any(p.name != LOCK_FILE for p in directory.iterdir()))


def refuse_existing(output: Path, overwrite: bool) -> None:
    """Refuse an ``output`` that holds content (``holds_content``: the lock file a killed run leaves is none)
    unless ``overwrite``: a one-line SynePruneError naming --output and --overwrite. Touches nothing."""
    if holds_content(output) and not overwrite:
        raise SynePruneError(f"output '{output}' already exists; choose a new --output or pass --overwrite")


def empty_directory(directory: Path) -> None:
    """Remove everything in ``directory`` except its lock file (which the caller holds)."""
    for entry in directory.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def new_output(output: Path, overwrite: bool, check_only: bool = False) -> None:
    """A fresh run's output: one that holds content (``holds_content``) is refused with a one-line SynePruneError
    naming --resume, --overwrite and --output, unless ``overwrite``; then, unless ``check_only``, it is emptied (its
    lock file kept) and created with its parents (a failed write is a ``write_failure``)."""
    if holds_content(output):
        if not overwrite:
            raise SynePruneError(f"output '{output}' already exists; pass --resume to continue it, --overwrite to replace it, or choose another --output")
        if not check_only:
            empty_directory(output) if output.is_dir() else output.unlink()
    if not check_only:
        with writing(output):
            output.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def output_lock(directory: str | Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created, with its parents, when missing) while the block runs;
    yields the directory. ``what``: the kind of run, for the message ("search", "super-network training").

    Raises ``SynePruneError`` when another process holds it ("'DIR' is in use by another running WHAT (process
    PID)"), and ``write_failure`` when the directory or its lock file cannot be created. On the way out the lock
    file is removed, and the directory too when this call created it and it is still empty."""
    directory = Path(directory)
    created = not directory.exists()
    lock = directory / LOCK_FILE
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
        handle = _acquire(lock, directory, what)
    try:
        yield directory
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        handle.close()
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty: a run refused before writing anything leaves nothing


def _acquire(lock: Path, directory: Path, what: str):
    """Open and flock ``lock``; the file must still be the one at that path once locked (a releasing process
    removes it), else try again."""
    for _ in range(10):
        handle = open(lock, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise SynePruneError(f"'{directory}' is in use by another running {what}" + (f" (process {holder})" if holder else "")
                                 + "; wait for it to end, or choose another --output") from None
        try:
            same = os.path.samestat(os.fstat(handle.fileno()), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()
    raise SynePruneError(f"cannot lock '{directory}' (its lock file keeps changing); try again")
