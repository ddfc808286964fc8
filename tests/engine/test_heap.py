"""glibc malloc arenas capped in a worker process (Settings.malloc_arenas, performance issue item 3).

Every thread that allocates gets an arena of its own, up to 8 per core, each reserving 64 MiB of address
space; memory one stage's threads freed then sits in arenas the next stage's threads never use. Run in
fresh interpreters: 8 threads allocate at once, with and without the cap; the address space the arenas
reserved is the difference."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.worker import limit_malloc_arenas

CHILD = """
import sys, threading
from engine.worker import limit_malloc_arenas
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
