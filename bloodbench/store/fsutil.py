"""Crash-safe file writes with the umask's mode, shared by the data cache, the results store and the reports,
and a write probe for a folder before any work. A full filesystem (or quota, or a read-only one) is one
:class:`NoSpace` line, and the file being replaced stays as it was."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path

from bloodbench.errors import BloodbenchError


def current_umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: Path) -> None:
    """fsync a folder, so a rename inside it survives a power cut (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: errno values no retry fixes: the filesystem is full, over quota, or read-only.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class NoSpace(BloodbenchError):
    """A write failed for want of room (or of a writable filesystem); a retry would meet it again."""


def no_space(exc: BaseException, path: str | os.PathLike | None = None) -> NoSpace | None:
    """``exc`` as one :class:`NoSpace` line naming ``path`` (else the file the OS named), or None when it is
    another error."""
    if isinstance(exc, NoSpace):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in NO_SPACE:
        return None
    where = path or exc.filename or "the output filesystem"
    return NoSpace(f"no space left on {where} ({exc.strerror or os.strerror(exc.errno)}): free some space or "
                   f"write elsewhere, then run the same command again; files already written are intact")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over ``path``, fsync the folder.

    A crash at any point leaves either the old file or the new one, never a torn one. The
    file gets the mode a plain ``open`` would give (0666 less the umask), not mkstemp's 0600.
    A full (or read-only) filesystem raises :class:`NoSpace`, the old file intact.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o666 & ~current_umask())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        full = no_space(exc, path.parent)
        if full is not None:
            raise full from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    atomic_write_bytes(path, text.encode())


def ensure_writable_dir(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Create ``path`` and write-probe it, so an unusable folder is one line before any work.

    ``what`` names the folder in the message ("results directory"), ``hint`` says how to fix it.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(20, "it is a file")
        fd, probe = tempfile.mkstemp(prefix=".bloodbench-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise BloodbenchError(f"cannot write to {what} {path}: it is a file; {hint}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(exc, path) from None
        raise BloodbenchError(f"cannot write to {what} {path}: {exc.strerror or exc}; {hint}") from None
    return path


def output_dir(path: str | os.PathLike, hint: str = "choose another --out") -> Path:
    """A command's output folder, created and write-probed up front: an unusable ``--out`` is one line."""
    return ensure_writable_dir(path, "output folder", hint)


def finite_or_none(obj):
    """``obj`` with every NaN or infinite float (numpy's too) replaced by None, through dicts, lists and tuples."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # a numpy array or scalar
        return finite_or_none(obj.tolist())
    return obj


def strict_json(obj, **options) -> str:
    """``json.dumps`` that always gives strict JSON: NaN and ±Infinity become null (``allow_nan=False``
    then guarantees none is left); ``options`` as for ``json.dumps``."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **options)
