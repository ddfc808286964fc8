"""engine.heap: glibc malloc arenas capped in a worker process (Settings.malloc_arenas) and freed heap
returned to the kernel after each step (performance issue item 3).

Every thread that allocates gets an arena of its own, up to 8 per core, each reserving 64 MiB of address
space; memory one stage's threads freed then sits in arenas the next stage's threads never use. Run in
fresh interpreters: 8 threads allocate at once, with and without the cap; the address space the arenas
reserved is the difference."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.heap import limit_malloc_arenas

CHILD = """
import sys, threading
from engine.heap import limit_malloc_arenas
capped = limit_malloc_arenas(int(sys.argv[1]))
def vm():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmSize:')).split()[1]) // 1024
before = vm()
go, done = threading.Barrier(8), threading.Barrier(9)
def work():
    go.wait()
    keep = [bytearray(4096) for _ in range(2000)]  # small allocations: from the thread's arena
    done.wait()
    del keep
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
done.wait()
print(capped, vm() - before)
for t in threads: t.join()
"""


def _grown(arenas: int) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(arenas)], capture_output=True, text=True, check=True)
    capped, grown = out.stdout.split()
    return capped == "True", int(grown)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_capped_process_reserves_no_arena_per_thread():
    capped, with_cap = _grown(1)
    default, without = _grown(0)
    assert capped and not default
    # 8 threads' stacks (8 MiB each) in both; 8 arenas of 64 MiB reserved only without the cap
    assert without - with_cap >= 4 * 64, (without, with_cap)


def test_no_cap_asked_none_set():
    assert limit_malloc_arenas(0) is False


RELEASE = """
import sys
from engine.heap import release_free_heap
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS:')).split()[1]) // 1024
# 300 MiB in small blocks with a keeper every 64th: freeing the rest leaves the heap's top in use, so
# free() alone cannot shrink it; whole free pages inside it are what malloc_trim gives back
blocks = [bytearray(4000) for _ in range(80_000)]
keep = blocks[::64]
del blocks
before = rss()
released = release_free_heap()
print(released, before, rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_goes_back_to_the_kernel():
    out = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True, check=True)
    released, before, after = out.stdout.split()
    assert released == "True"
    assert int(before) - int(after) >= 200, (before, after)  # of ~300 MiB freed
