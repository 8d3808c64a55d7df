"""
Files written whole or not at all: every writer of the package (model saves, replay buffers, the parity run store,
reports and plots) writes a temporary file next to the target and renames it over the target.

What that gives, whoever else touches the folder:

- a reader (another process, a resumed sweep) sees the previous file or the new one, never half of one, also when
  the writer is killed at any instruction or the disk fills up;
- concurrent writers of one target each write their own temporary file; the last rename wins, whole;
- a symlink, hard link or FIFO planted at the target is replaced, never written through (a plain
  ``open(target, "w")`` would overwrite the file a link points to, or block on a FIFO);
- a file this user could not open for writing (one its owner made read-only) is not replaced: ``PermissionError``,
  as SB3's ``save`` raises (for root, whom modes do not stop, it is replaced, as SB3's ``save`` overwrites it);
- the new file keeps the permission bits of the file it replaces, else gets what ``open()`` gives under the umask
  (the umask is never changed: changing it is process-wide and races with other threads);
- a temporary file left by a writer that was killed is removed by the next write of the same target on the same
  host once its process is gone.
"""

import errno
import os
import pathlib
import secrets
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress

TMP_SUFFIX = ".tmp"


def owner_tag() -> str:
    """``<pid>@<host>``: who writes a temporary file, so that a later writer can tell a dead writer's leftovers."""
    return f"{os.getpid()}@{socket.gethostname()}"


def is_dead_owner(tag: str) -> bool:
    """Whether the process named by ``tag`` (:func:`owner_tag`) is gone; another host's is never taken for dead."""
    pid, _, host = tag.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's process cannot be checked from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def remove_stale_temporaries(target: pathlib.Path) -> list[pathlib.Path]:
    """
    Remove the temporary files of ``target`` whose writer process (on this host) is gone; return them.

    :param target: the file whose leftovers to remove
    """
    prefix = f".{target.name}."
    removed = []
    with suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX)):
                continue
            # .<target name>.<token>.<pid>@<host>.tmp
            _, _, tag = name[len(prefix) : -len(TMP_SUFFIX)].partition(".")
            if is_dead_owner(tag):
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(pathlib.Path(entry.path))
    return removed


def _create_temporary(target: pathlib.Path) -> pathlib.Path:
    """A new empty file next to ``target``, created exclusively (no link followed) with ``open()``'s mode."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.{owner_tag()}{TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    os.close(os.open(tmp, flags, 0o666))  # the kernel applies the umask, as for open()
    return tmp


def _fsync(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: pathlib.Path) -> None:
    """Make a rename in ``path`` durable; best effort (some file systems or permissions do not allow it, and the
    rename has happened either way)."""
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_replaceable(target: pathlib.Path) -> None:
    """
    Raise ``PermissionError`` when ``target`` is a file this user may not write (``open(target, "w")`` would fail):
    the rename needs only the folder's permission, but a file made read-only is a request not to overwrite it.
    """
    with suppress(FileNotFoundError):
        if not stat.S_ISREG(os.lstat(target).st_mode):
            return  # a link, FIFO or folder: replaced, or refused by the rename
        effective_ids = os.access in os.supports_effective_ids
        if not os.access(target, os.W_OK, effective_ids=effective_ids):
            raise PermissionError(errno.EACCES, "Permission denied: the file is read-only for this user (make it writable)")


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[pathlib.Path]:
    """
    Yield a new temporary path next to ``target``; once the body has written it, give it the mode of the file it
    replaces (if any), flush it to disk and rename it over ``target``. On any error, or an exception in the body,
    the temporary file is removed and ``target`` is left as it was; an ``OSError`` (disk full, unwritable folder, a
    directory at ``target``, a file this user may not write) is raised again, with its errno and so its subclass,
    naming the target.

    :param target: the file to write
    """
    target = pathlib.Path(target)
    tmp: pathlib.Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_replaceable(target)
        remove_stale_temporaries(target)
        tmp = _create_temporary(target)
        yield tmp
        with suppress(FileNotFoundError):
            previous = os.lstat(target)
            if stat.S_ISREG(previous.st_mode):
                os.chmod(tmp, stat.S_IMODE(previous.st_mode))
        _fsync(tmp)
        os.replace(tmp, target)
        tmp = None
        _fsync_directory(target.parent)
    except OSError as error:
        message = f"could not write {target}: {error.strerror or error}; the previous file, if any, is unchanged"
        raise (OSError(error.errno, message) if error.errno is not None else OSError(message)) from error
    finally:
        if tmp is not None:
            with suppress(FileNotFoundError):
                os.unlink(tmp)


def write_text_atomically(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` through :func:`atomic_path`."""
    with atomic_path(target) as tmp, open(tmp, "w", newline="") as file:
        file.write(text)
