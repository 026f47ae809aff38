"""One training run per output folder: a lock file that names the process holding it.

    with FolderLock(out):          # out/.lock holds this process's id while the run lasts
        ...                         # a second run on out fails at once, naming that id

The lock file is created with O_CREAT | O_EXCL, which the operating system makes atomic: of two
runs starting together exactly one gets it. A lock left by a process that no longer exists (killed
with SIGKILL, or a machine that rebooted) is stale: it is replaced, with a note.
"""
import os
import sys


class FolderLocked(RuntimeError):
    """Another live process is training into this folder."""


class FolderLock:
    """``with FolderLock(folder):`` holds ``folder/.lock`` for this process."""

    def __init__(self, folder):
        self.path = os.path.join(folder, ".lock")
        self.held = False

    def __enter__(self):
        for _ in range(2):                       # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _alive(holder):
                    raise FolderLocked(f"{os.path.dirname(self.path)} is being trained into by process {holder} "
                                       f"(lock file {self.path}); wait for it, or choose another --out") from None
                sys.stderr.write(f"note: removing the stale lock {self.path} (process {holder} is gone)\n")
                os.remove(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return self
        raise FolderLocked(f"could not take the lock {self.path}")

    def __exit__(self, *exc):
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        return False

    def _holder(self):
        """The process id written in the lock file, or None if it is empty or unreadable."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return int(f.read().strip() or "-1")
        except (OSError, ValueError):
            return None


def _alive(pid):
    """True when a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                      # it exists, owned by someone else
        return True
    except OSError:                              # Windows: os.kill(pid, 0) is not a probe there
        return True
    return True
