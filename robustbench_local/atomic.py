"""Writing a file so that a reader sees the old file or the whole new one, never half of one.

Every file the project writes for others to read (cached checkpoints and their sidecars,
summary.json, report.html, the leaderboard) goes through `write_atomically`: the bytes go to
a temporary ``<name>.<pid>-<random>.partial`` beside the destination, are flushed to disk,
and the temporary is renamed over the destination. Whatever stops the write (a full disk, a
read-only folder, Ctrl-C) removes the temporary, so a failed write leaves no ``*.partial``
behind, and an ``OSError`` names the destination, not the temporary.

This module imports nothing of the project, so the zoo, the results and the reports can all
use it without an arrow pointing the wrong way (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["PARTIAL_SUFFIX", "write_atomically"]

PARTIAL_SUFFIX = ".partial"


def _write_file(path: Path, data: bytes) -> None:
    """Create path with data and flush it to disk (the one place bytes are written)."""
    # "xb": the temporary's name is unique, so an existing file means a bug, not a retry.
    # open() creates it with 0o666 & ~umask, like any other file the user writes.
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename makes it visible


def write_atomically(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Replace the file at path with data, atomically.

    Args:
        path: the destination; its folder must exist.
        data: the content; a str is written as UTF-8.

    Returns:
        the destination path.

    Raises:
        OSError: the write or the rename failed (ENOSPC, EACCES, ...); its filename is the
            destination, and no temporary file is left behind.
    """
    destination = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    # A name of its own per writer: two processes writing one destination must not
    # interleave their bytes in a shared temporary before the rename.
    partial = destination.with_name(
        f"{destination.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}"
    )
    try:
        _write_file(partial, payload)
        os.replace(partial, destination)
    except OSError as err:
        if err.errno is None:
            raise
        # Name the file the user knows; the temporary is gone by the time they read this.
        raise OSError(err.errno, err.strerror, str(destination)) from err
    finally:
        # Also on KeyboardInterrupt; a failing unlink (read-only folder) must not hide the
        # error that brought us here.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return destination
