"""Resident memory of this process: reading its peak, and handing checkpoint pages back.

Torch-free on purpose, so the UI and the run summary can report memory without importing torch.

Why the peak comes from ``/proc/self/status`` first: ``getrusage(RUSAGE_SELF).ru_maxrss``
survives ``exec``, so a process started from a large parent (a test runner, a shell wrapper
that forked it) reports the parent's peak when that was higher. ``VmHWM`` belongs to this
process's own address space. Both count file-backed pages (a memory-mapped checkpoint) as
resident, which is what ``/usr/bin/time`` and the kernel's out-of-memory accounting see too.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

_MADV_DONTNEED = 4  # Linux value


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_bytes() -> int:
    """The most resident memory this process has held so far, in bytes."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    import resource  # POSIX only; imported here so that importing this module works everywhere

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


def rss_bytes() -> int | None:
    """Resident memory now, in bytes (None where the platform does not say)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's mappings of regular files that it cannot execute.

    Those are the checkpoint mappings (safetensors maps its file read-only or copy-on-write);
    anonymous memory, the heap and shared libraries are never included.
    """
    spans: list[tuple[int, int]] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or not fields[5].startswith("/") or "x" in fields[1]:
                    continue
                start, end = (int(part, 16) for part in fields[0].split("-"))
                spans.append((start, end))
    except OSError:
        return []
    return spans


class MappedFiles:
    """This process's memory-mapped files as they are now, to hand back the pages of tensors in them.

    The mappings are read once, when this is made (reading them costs milliseconds, and a model
    has hundreds of layers). That is safe for tensors that already existed then and are still
    alive when ``release`` is called: a mapping cannot be unmapped while a tensor in it lives,
    so its address range cannot have been reused for anything else in between.
    """

    def __init__(self) -> None:
        self._mappings = _file_mappings() if sys.platform.startswith("linux") else []

    def release(self, spans: Iterable[tuple[int, int]]) -> int:
        """Drop the resident pages of mapped files inside ``spans``; returns the bytes dropped.

        ``spans`` are (address, length) pairs of tensors whose contents have already been copied
        elsewhere (packed or quantized) and that no other live tensor reads. Only whole pages
        inside a span *and* inside a file mapping are touched, so anonymous memory and
        neighbouring tensors are never affected. The data stays in the file: a later read of
        such a page maps it back from the page cache. Nothing happens off Linux.
        """
        if not self._mappings:
            return 0
        libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded into this process
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        page = os.sysconf("SC_PAGE_SIZE")
        released = 0
        for address, length in spans:
            first = -(-address // page) * page  # round up: never a page shared with a neighbour
            last = (address + length) // page * page
            for map_start, map_end in self._mappings:
                start, end = max(first, map_start), min(last, map_end)
                if end > start and libc.madvise(start, end - start, _MADV_DONTNEED) == 0:
                    released += end - start
        return released
