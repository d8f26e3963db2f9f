"""lab/image/tgstack_lab_bytecode.py: what a lab host imports from Ansible's module zip is what it compiles.

The cache is installed into this process's zipimport for each test and taken out afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import zipfile
import zipimport
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[3] / "lab" / "image" / "tgstack_lab_bytecode.py"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache module, installed with its directory under TMP_PATH; zipimport restored afterwards."""
    directory = tmp_path / "cache"
    directory.mkdir()
    monkeypatch.setattr(zipimport, "_compile_source", zipimport._compile_source)
    spec = importlib.util.spec_from_file_location("tgstack_lab_bytecode_under_test", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # installs itself only when its directory exists: the real one does not
    module.CACHE = str(directory)
    module._install()
    return directory


def payload(tmp_path: Path, run: int, source: str) -> Path:
    """A module zip as Ansible writes one for every module run: a new directory each time."""
    run_dir = tmp_path / f"ansible_payload_{run}"
    run_dir.mkdir()
    archive = run_dir / "payload.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("labpkg/__init__.py", "")
        out.writestr("labpkg/answer.py", source)
    return archive


def load(archive: Path):
    sys.path.insert(0, str(archive))
    try:
        for name in ("labpkg.answer", "labpkg"):
            sys.modules.pop(name, None)
        return importlib.import_module("labpkg.answer")
    finally:
        sys.path.remove(str(archive))
        for name in ("labpkg.answer", "labpkg"):
            sys.modules.pop(name, None)
        sys.path_importer_cache.pop(str(archive), None)


def test_the_second_run_takes_the_code_from_the_cache_and_names_its_own_file(cache, tmp_path):
    source = "def value():\n    return 41 + 1\n\ndef fail():\n    raise RuntimeError('from the payload')\n"
    first = load(payload(tmp_path, 1, source))
    assert first.value() == 42
    entries = sorted(os.listdir(cache))
    assert len(entries) == 2 and not any(name.endswith(".tmp") for name in entries)

    second_zip = payload(tmp_path, 2, source)
    second = load(second_zip)
    assert second.value() == 42
    assert sorted(os.listdir(cache)) == entries  # nothing compiled again
    with pytest.raises(RuntimeError) as raised:
        second.fail()
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert frames[-1].filename.startswith(str(second_zip)), frames[-1].filename


def test_changed_source_is_compiled_again_never_served_from_an_older_entry(cache, tmp_path):
    assert load(payload(tmp_path, 1, "def value():\n    return 1\n")).value() == 1
    assert load(payload(tmp_path, 2, "def value():\n    return 2\n")).value() == 2
    assert len(os.listdir(cache)) == 3  # one __init__, two different answer.py


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", b"\xe3" + b"\xff" * 40])
def test_a_damaged_entry_is_compiled_again_and_replaced(cache, tmp_path, damage):
    source = "def value():\n    return 'fresh'\n"
    load(payload(tmp_path, 1, source))
    for name in os.listdir(cache):
        (cache / name).write_bytes(damage)
    assert load(payload(tmp_path, 2, source)).value() == "fresh"
    assert all((cache / name).stat().st_size > len(damage) for name in os.listdir(cache))


def test_a_cache_it_cannot_write_still_imports(cache, tmp_path):
    cache.chmod(0o555)
    try:
        if os.access(cache, os.W_OK):  # root writes anyway: take the directory away instead
            cache.chmod(0o755)
            cache.rename(tmp_path / "gone")
        assert load(payload(tmp_path, 1, "def value():\n    return 'compiled'\n")).value() == "compiled"
    finally:
        if cache.exists():
            cache.chmod(0o755)
