"""Writes that never lie: an artifact is either complete on disk or not there at all.

``atomic_write(path, writer)`` runs ``writer`` against an in-memory buffer (so libtorch's C++
stream writer never meets a full disk: a failing ``PyTorchStreamWriter`` aborts the whole process
with ``terminate called after throwing an instance of 'c10::Error'``), then writes those bytes to a
temporary file in the same directory, flushes and fsyncs it, checks that its size on disk equals
the bytes produced, and only then renames it onto ``path`` (``os.replace``, atomic within one
file system). On any failure the temporary file is removed and :class:`SaveError` is raised,
naming the file and the cause (``No space left on device (ENOSPC)``); ``path`` itself is left
as it was before the call (absent, or its previous complete contents).

``atomic_torch_save(path, save, objects)`` is the same for ``torch.save`` and ``torch.jit.save``,
which name the zip archive's folder after the file they are given (``model.pt`` holds
``model/data.pkl``; a buffer gives ``archive/data.pkl``). To keep the bytes a user's
``torch.save(obj, "model.pt")`` produces, libtorch writes a file of the same name in a private
scratch folder in memory (``/dev/shm``, else the temp dir) that has room for twice the tensors'
bytes; the bytes then go to ``path`` as above. Only when no scratch folder has room does it
fall back to a buffer (the archive folder is then ``archive``).
"""

import errno
import io
import os
import shutil
import sys
import tempfile
from typing import Any, BinaryIO, Callable, Iterable, Optional, Union


class SaveError(Exception):
    """An artifact could not be written completely; nothing partial was left at its path.

    The worker reports it with kind ``save_error``; the message names the file and the cause.
    ``errno`` is the underlying OSError's errno (``errno.ENOSPC`` on a full disk), else None.
    """

    def __init__(self, message: str, errno_: "int | None" = None) -> None:
        super().__init__(message)
        self.errno = errno_


def describe_os_error(e: BaseException) -> str:
    """'No space left on device (ENOSPC)' for an OSError, else the exception's type and text."""
    if isinstance(e, OSError) and e.errno is not None:
        name = errno.errorcode.get(e.errno, f"errno {e.errno}")
        text = os.strerror(e.errno)
        extra = f": {e.strerror}" if e.strerror and e.strerror != text else ""  # our own size check's words
        return f"{text} ({name}){extra}"
    return f"{type(e).__name__}: {e}"


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: str, data: "bytes | memoryview", what: str = "artifact") -> None:
    """Writes ``data`` to ``path`` atomically; raises :class:`SaveError` naming ``path`` on failure."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        view = memoryview(data)
        written = 0
        while written < len(view):  # os.write may write less than asked
            n = os.write(fd, view[written:])
            if n <= 0:
                raise OSError(errno.EIO, f"write returned {n} after {written} of {len(view)} bytes")
            written += n
        os.fsync(fd)  # tmpfs and ext4 report ENOSPC here at the latest
        on_disk = os.fstat(fd).st_size
        if on_disk != len(data):
            raise OSError(errno.EIO, f"the file has {on_disk} bytes on disk, {len(data)} were produced")
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException as e:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        _remove(tmp)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise SaveError(f"{path}: cannot save the {what} ({len(data)} bytes): {describe_os_error(e)}; no partial file was left behind",
                        e.errno if isinstance(e, OSError) else None) from e
    try:  # the rename itself is durable once the directory is synced; best effort
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write(path: str, writer: Callable[[BinaryIO], None], what: str = "artifact") -> int:
    """Serializes with ``writer(buffer)`` into memory, then writes the bytes to ``path`` atomically.

    Args:
        path: the final file.
        writer: writes the artifact's bytes into the binary file object it is given
            (``lambda f: torch.save(obj, f)``, ``lambda f: torch.jit.save(m, f)``).
        what: a few words for the error message ("TorchScript module", "checkpoint").

    Returns:
        The number of bytes written.

    Raises:
        SaveError: the bytes could not be written completely; the message names ``path`` and the
            cause. An exception raised by ``writer`` itself (a serialization error, not a disk
            error) propagates unchanged, and nothing is written.
    """
    buffer = io.BytesIO()
    writer(buffer)
    data = buffer.getbuffer()
    try:
        atomic_write_bytes(path, data, what)
        return len(data)
    finally:
        data.release()


def _storage_bytes(objects: Iterable[Any]) -> int:
    """The bytes of every distinct tensor storage in ``objects`` (modules, mappings, sequences)."""
    import torch

    seen, total, stack = set(), 0, list(objects)
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Tensor):
            storage = o.untyped_storage() if hasattr(o, "untyped_storage") else o.storage()
            key = (storage.data_ptr(), storage.nbytes())
            if key not in seen:
                seen.add(key)
                total += storage.nbytes()
        elif isinstance(o, torch.nn.Module):
            stack.extend(o.state_dict(keep_vars=True).values())
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    return total


SCRATCH_SLACK = 16 << 20


def _scratch_root(need: int) -> Optional[str]:
    for root in ("/dev/shm", tempfile.gettempdir()):
        try:
            st = os.statvfs(root)
        except OSError:
            continue
        if os.access(root, os.W_OK) and st.f_bavail * st.f_frsize >= need:
            return root
    return None


def atomic_torch_save(path: str, save: Callable[[Union[str, BinaryIO]], None], objects: Iterable[Any], what: str = "artifact") -> int:
    """Writes what ``save(target)`` writes (``torch.save``, ``torch.jit.save``) to ``path`` atomically.

    Args:
        path: the final file; its name is the name libtorch sees.
        save: writes the artifact to ``target``, a path or a binary file object.
        objects: what is saved, to size the scratch space (tensors, modules, dicts of them).
        what: a few words for the error message.

    Returns:
        The number of bytes written.

    Raises:
        SaveError: as :func:`atomic_write`.
    """
    root = _scratch_root(2 * _storage_bytes(objects) + SCRATCH_SLACK)
    if root is None:
        print(f"atomic_torch_save: no scratch folder has room for {what}; serializing {path} into a buffer "
              "(its zip folder will be 'archive')", file=sys.stderr)
        return atomic_write(path, save, what)
    scratch = tempfile.mkdtemp(prefix="torchconformance-save-", dir=root)
    try:
        staged = os.path.join(scratch, os.path.basename(path))
        save(staged)
        with open(staged, "rb") as f:
            data = f.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write_bytes(path, data, what)
    return len(data)
