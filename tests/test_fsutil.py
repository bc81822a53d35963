"""Atomic writes give files the mode an ordinary write would (issue 13.6: they were 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from matcher.fsutil import atomic_bytes, atomic_text, current_umask, replace_dir


@pytest.fixture
def umask():
    def set_(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_new_files_and_folders_respect_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    atomic_bytes(tmp_path / "a.xlsx", b"x")
    atomic_text(tmp_path / "sub" / "b.html", "<p>")
    assert mode(tmp_path / "a.xlsx") == 0o666 & ~mask
    assert mode(tmp_path / "sub" / "b.html") == 0o666 & ~mask
    tmp = tmp_path / ".new.tmp"
    tmp.mkdir(mode=0o700)
    replace_dir(tmp, tmp_path / "folder")
    assert mode(tmp_path / "folder") == 0o777 & ~mask


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "shared.csv"
    path.write_text("old")
    path.chmod(0o664)
    atomic_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o664
