"""Storage helpers: every published file appears whole or not at all; uploaded fonts by their content."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it over ``final`` (atomic on POSIX).

    The temporary name keeps the suffix so tools that pick a format from it still work.
    On error the temporary file is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as standard JSON; NaN and Infinity (not JSON) raise ValueError, nothing is written."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- uploaded fonts ------------------------------------------------------------------------------
#
# An account's uploaded font (POST /api/fonts) is stored once per content, under the data root:
#
#     <data_dir>/fonts/<sha256 of the file>.ttf|otf
#
# A job names it in captionStyle.fontFile (the file name alone, set by the gateway at submit), so a worker
# in another process, or on another machine that mounts the same storage, finds it relative to the jobs it
# runs (:func:`find_font`), and checks the content against its name before using it.

#: the folder under the data root that holds uploaded fonts
FONTS_DIR_NAME = "fonts"
FONT_FILE_NAME = re.compile(r"^[0-9a-f]{64}\.(ttf|otf)$")


def font_file_name(content: bytes, ext: str) -> str:
    """The content address of a font file: ``<sha256>.<ext>`` (ext ``ttf`` or ``otf``)."""
    if ext not in ("ttf", "otf"):
        raise ValueError(f"not a font extension: {ext!r}")
    return f"{hashlib.sha256(content).hexdigest()}.{ext}"


def fonts_dir(data_dir: Path) -> Path:
    return Path(data_dir) / FONTS_DIR_NAME


def store_font(data_dir: Path, content: bytes, ext: str) -> str:
    """Write ``content`` at its content address under ``data_dir`` (atomically; kept if already there)."""
    name = font_file_name(content, ext)
    final = fonts_dir(data_dir) / name
    if not final.is_file():
        with atomic_path(final) as tmp:
            tmp.write_bytes(content)
    return name


def remove_font(data_dir: Path, name: str) -> None:
    if FONT_FILE_NAME.fullmatch(name):
        (fonts_dir(data_dir) / name).unlink(missing_ok=True)


def find_font(name: str, near: Path | None = None) -> Path | None:
    """The uploaded font file ``name`` (``<sha256>.ttf|otf``): in ``$CLIPORA_DATA_DIR/fonts`` or in the
    ``fonts/`` folder of the nearest ancestor of ``near`` that has it (a job's files live under
    ``<data_dir>/jobs/<id>/``, so the data root is one of them). Only a file whose content has that sha256
    counts; None when there is none."""
    if not FONT_FILE_NAME.fullmatch(name):
        return None
    roots: list[Path] = []
    if env := os.environ.get("CLIPORA_DATA_DIR"):
        roots.append(Path(env))
    if near is not None:
        roots += list(Path(near).resolve().parents)
    digest = name.split(".", 1)[0]
    for root in roots:
        path = root / FONTS_DIR_NAME / name
        try:
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                return path.resolve()
        except OSError:
            continue
    return None
