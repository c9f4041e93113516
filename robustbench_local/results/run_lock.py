"""One process per run folder: an exclusive lock file that names its holder.

Two ``rbl run`` on the same folder would both do all the work and race on the store. The
lock is an ``fcntl.flock`` on ``<run>/.rbl.lock``: the kernel drops it when its process dies,
so a lock left by a killed run is simply taken over; the pid and host written inside are
only there to name the holder in the refusal.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_NAME", "RunFolderBusy", "RunLock"]

LOCK_NAME = ".rbl.lock"


class RunFolderBusy(RuntimeError):
    """Another live process holds the run folder."""


class RunLock:
    """Context manager: hold ``<folder>/.rbl.lock`` exclusively, or raise `RunFolderBusy` at once.

    Args:
        folder: the run folder (created when missing).
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {str(self.path.parent)!r} is in use by {holder}; wait for it to "
                f"finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
