"""The multilingual model's reassembly (stages/speech/models.py), on small stand-in parts: concatenated
once, checked against the recorded sha256, skipped when already whole, refused when a part is wrong; a
missing model is a PermanentError that says how to install it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.errors import PermanentError
from stages.speech import models, resolve_model


@pytest.fixture
def fake_parts(tmp_path, monkeypatch) -> dict[str, bytes]:
    """Two stand-in packages' data folders and BASE_FILES recorded for them."""
    content = {"model.bin.part1": b"A" * 1000, "model.bin.part2": b"B" * 777, "config.json": b"{}",
               "tokenizer.json": b'{"t": 1}', "vocabulary.txt": b"a\nb\n"}
    data = {pkg: tmp_path / pkg / "data" for pkg, _ in models.BASE_PARTS}
    for d in data.values():
        d.mkdir(parents=True)
    first, second = (pkg for pkg, _ in models.BASE_PARTS)
    for name, blob in content.items():
        (data[second if name == "model.bin.part2" else first] / name).write_bytes(blob)
    whole = {"model.bin": content["model.bin.part1"] + content["model.bin.part2"],
             **{n: content[n] for n in ("config.json", "tokenizer.json", "vocabulary.txt")}}
    monkeypatch.setattr(models, "BASE_FILES", {n: (hashlib.sha256(b).hexdigest(), len(b)) for n, b in whole.items()})
    monkeypatch.setattr(models, "_package_data", lambda pkg: data[pkg])
    return whole


def test_the_parts_are_joined_once_and_checked(fake_parts, tmp_path):
    prefix = tmp_path / "venv"
    folder, wrote = models.install_base(prefix)
    assert wrote and folder == prefix / "share" / "clipora" / "models" / "whisper-base"
    for name, blob in fake_parts.items():
        assert (folder / name).read_bytes() == blob
    assert sorted(p.name for p in folder.iterdir()) == sorted([*fake_parts, models.STAMP])  # no temporary left
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert models.install_base(prefix) == (folder, False)  # idempotent: nothing rewritten
    assert (folder / "model.bin").stat().st_mtime_ns == mtime
    # a damaged file of the same size: found by --check and rebuilt
    (folder / "model.bin").write_bytes(b"C" * len(fake_parts["model.bin"]))
    assert models.install_base(prefix) == (folder, False)  # sizes match: the stamp is trusted
    assert models.install_base(prefix, check=True) == (folder, True)
    assert (folder / "model.bin").read_bytes() == fake_parts["model.bin"]


def test_a_wrong_part_is_refused_and_leaves_no_model(fake_parts, tmp_path, monkeypatch):
    first = models.BASE_PARTS[0][0]
    data = models._package_data(first)
    (data / "model.bin.part1").write_bytes(b"X" * 1000)
    with pytest.raises(models.ModelMissing, match="sha256"):
        models.install_base(tmp_path / "venv")
    folder = models.base_model_dir(tmp_path / "venv")
    assert not (folder / "model.bin").exists() and not (folder / models.STAMP).exists()
    assert models.main(["--prefix", str(tmp_path / "venv")]) == 1


def test_a_missing_model_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "base_model_dir", lambda prefix=None: Path(tmp_path / "nothing"))
    with pytest.raises(PermanentError, match="make install"):
        resolve_model("base")
    assert resolve_model("")[1] and resolve_model("tiny.en")[1]  # the English-only default either way
