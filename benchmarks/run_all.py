"""Run every benchmark, write benchmarks/results/*.json, and refresh the tables in BENCHMARKS.md.

    python -m benchmarks.run_all              # the full set (~15 min on 2 cores)
    python -m benchmarks.run_all --quick      # a smoke run (~4 min); results in *.quick.json
    python -m benchmarks.run_all --only asr_rtf,memory
    python -m benchmarks.run_all --tables-only  # rebuild BENCHMARKS.md from the JSON files

BENCHMARKS.md keeps its prose; only the blocks between ``<!-- BEGIN name -->`` and
``<!-- END name -->`` are regenerated, from the full results where they exist (quick
results only fill a block that has no full result yet, and say so).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, have_ffmpeg, read_result

BENCHMARKS = ("render_vs_ffmpeg", "asr_rtf", "end_to_end", "memory", "moments_local", "gateway_latency", "load",
              "framing_quality", "asr_models", "rerender", "dispatch", "cluster", "diarize_cost")
#: measured on a GPU machine only (README "CUDA image"): never run here, their tables refreshed from their JSON
DEVICE_BENCHMARKS = ("gpu_check",)
DOC = ROOT / "BENCHMARKS.md"


def module(name: str) -> Any:
    return importlib.import_module(f"benchmarks.{name}")


def block(name: str) -> str:
    data = read_result(name) or read_result(name, quick=True)
    if data is None and name in DEVICE_BENCHMARKS:
        return ("_not run yet: needs a GPU machine (`make gpu-wheels` here, then "
                "`python3 benchmarks/gpu_check.py` there)_")
    if data is None:
        return "_not run yet: `python -m benchmarks.run_all`_"
    return module(name).table(data)


def refresh_doc(path: Path = DOC) -> None:
    """Replace each benchmark's marked block in BENCHMARKS.md with its current table."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    for name in BENCHMARKS + DEVICE_BENCHMARKS:
        begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        new = f"{begin}\n{block(name)}\n{end}"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        text = (
            pattern.sub(lambda _m, new=new: new, text)
            if pattern.search(text)
            else text + f"\n{new}\n"
        )
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small inputs, one repetition")
    p.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    p.add_argument("--tables-only", action="store_true", help="only rebuild BENCHMARKS.md")
    args = p.parse_args(argv)
    failed: list[str] = []
    if not args.tables_only:
        if not have_ffmpeg():
            print("the ffmpeg CLI is needed (reference runs and test sources)", file=sys.stderr)
            return 2
        names = args.only.split(",") if args.only else list(BENCHMARKS)
        for name in names:
            t0 = time.perf_counter()
            print(f"== {name}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
            try:
                data = module(name).run(quick=args.quick)
            except Exception:  # one broken harness must not lose the others' results
                traceback.print_exc()
                failed.append(name)
                continue
            print(module(name).table(data), flush=True)
            print(
                f"== {name} done in {time.perf_counter() - t0:.0f} s\n", file=sys.stderr, flush=True
            )
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
    refresh_doc()
    print(f"updated {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
