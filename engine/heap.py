"""What a job-running process does with glibc's malloc (both no-ops on a C library without it).

Long jobs free far more than they keep: a 10-minute job's analysis leaves ~150 MiB of freed heap that
glibc holds on to (free chunks between live ones are not returned by ``free``), and it grows with the
source's length. :func:`release_free_heap` hands those pages back after every step; the arena cap keeps
one stage's threads from parking freed memory in arenas the next stage's threads never use.
"""

from __future__ import annotations

import ctypes
import functools

#: mallopt's M_ARENA_MAX (glibc malloc.h)
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int) -> bool:
    """Let glibc's malloc keep at most ``arenas`` arenas in this process (``Settings.malloc_arenas``; every
    :class:`Worker` does, as it is made). It holds where the process has no more than 8 arenas yet (glibc
    fixes its limit then; a Ray node actor, with Ray's threads first, gets MALLOC_ARENA_MAX instead). Each
    thread that allocates under contention otherwise gets an arena of its own, up to 8 per core, and memory
    freed in one arena (a stage's frames) is not reused by threads of another (the next stage's): a 1-minute
    job peaked at 876 MiB with glibc's default and 691 MiB with 2 arenas, in the same time. False where it
    does not apply (0, or a C library without mallopt)."""
    if arenas <= 0:
        return False
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(M_ARENA_MAX, arenas))


def release_free_heap() -> bool:
    """Return the heap's free pages to the kernel (glibc ``malloc_trim(0)``: every arena, and whole free
    pages inside the heap, not only its top). The pipeline calls it after each step; it takes a few
    milliseconds. False where the C library has no malloc_trim or nothing was released."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "malloc_trim") and libc.malloc_trim(0))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None
