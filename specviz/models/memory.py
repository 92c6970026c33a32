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
import ctypes.util
import os
import resource
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
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


def rss_bytes() -> int | None:
    """Resident memory now, in bytes (None where the platform does not say)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def _private_file_mappings() -> list[tuple[int, int]]:
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


def release_file_pages(spans: Iterable[tuple[int, int]]) -> int:
    """Drop this process's resident pages of memory-mapped files inside ``spans``; returns bytes.

    ``spans`` are (address, length) pairs of tensors whose contents have already been copied
    elsewhere (packed or quantized) and that no live tensor still reads. Only whole pages inside
    a span *and* inside a file mapping are touched, so anonymous memory and neighbouring tensors
    are never affected. The data stays in the file: a later read of such a page maps it back
    from the page cache. Linux only; elsewhere nothing happens.
    """
    if not sys.platform.startswith("linux"):
        return 0
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return 0
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    page = os.sysconf("SC_PAGE_SIZE")
    mappings = _private_file_mappings()
    released = 0
    for address, length in spans:
        first = -(-address // page) * page  # round up: never a page shared with a neighbour
        last = (address + length) // page * page
        for map_start, map_end in mappings:
            start, end = max(first, map_start), min(last, map_end)
            if end > start and libc.madvise(start, end - start, _MADV_DONTNEED) == 0:
                released += end - start
    return released


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc only), after large frees of small blocks."""
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or libc_name is None:
        return
    trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)
    if trim is not None:
        trim(0)
