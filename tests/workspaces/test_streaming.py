"""The fast paths of process_upload: tar headers, gzip streams, read-ahead and member data."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import threading
import zlib
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.workspaces import _filetypes as ft
from cairn.workspaces._checks import Finding
from cairn.workspaces._findings import Abort
from cairn.workspaces._streams import BUFFER, Corrupt, Prefetch, map_read_errors
from cairn.workspaces._tarheader import SafeTarInfo

from .conftest import Run

FIELDS = (
    *("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname"),
    *("uname", "gname", "devmajor", "devminor"),
)


def header(name: str, fmt: Literal[0, 1, 2], **attrs: object) -> bytes:
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info.tobuf(fmt, "utf-8", "surrogateescape")[-tarfile.BLOCKSIZE :]


HEADERS = [
    header("a.txt", tarfile.GNU_FORMAT, size=20_000, mtime=1_700_000_000),
    header("dir/", tarfile.USTAR_FORMAT, type=tarfile.DIRTYPE),
    header("old-dir/", tarfile.GNU_FORMAT, type=tarfile.AREGTYPE),
    header("/".join(["p" * 60, "q" * 60, "r.tex"]), tarfile.USTAR_FORMAT, size=5),
    header("link", tarfile.PAX_FORMAT, type=tarfile.SYMTYPE, linkname="../x"),
    header("dev", tarfile.GNU_FORMAT, type=tarfile.CHRTYPE, devmajor=5, devminor=1),
    header("big.bin", tarfile.GNU_FORMAT, size=2**40),  # base-256: left to tarfile
    header("neg", tarfile.GNU_FORMAT, mtime=-5),
    header("caf\udce9.tex", tarfile.GNU_FORMAT, uname="\udcff" * 10),  # signed checksum
    header("././@LongLink", tarfile.GNU_FORMAT, type=tarfile.GNUTYPE_LONGNAME, size=300),
    header("sparse", tarfile.GNU_FORMAT, type=tarfile.GNUTYPE_SPARSE),
    bytes(512),
]


def stdlib_or_error(buf: bytes) -> tarfile.TarInfo | None:
    try:
        return tarfile.TarInfo.frombuf(buf, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None


def check_header(buf: bytes) -> bool:
    """The fast path agrees with tarfile; returns whether it took the header."""
    fast = SafeTarInfo.ordinary_frombuf(buf, "utf-8", "surrogateescape")
    if fast is None:
        return False
    slow = stdlib_or_error(buf)
    assert slow is not None, buf
    assert {f: getattr(fast, f) for f in FIELDS} == {f: getattr(slow, f) for f in FIELDS}
    return True


def test_ordinary_headers_take_the_fast_path() -> None:
    taken = [check_header(buf) for buf in HEADERS]
    assert taken == [True] * 6 + [False, False, True, True, False, False]


def test_signed_checksum_is_accepted() -> None:
    buf = bytearray(header("caf\udce9.tex", tarfile.GNU_FORMAT))
    signed = 256 + sum(b - 256 if b >= 128 else b for b in buf[:148] + buf[156:])
    buf[148:156] = b"%06o\0 " % signed
    assert check_header(bytes(buf))


@settings(max_examples=400, deadline=None)
@given(
    seed=st.sampled_from(HEADERS),
    edits=st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), max_size=4),
    fix_checksum=st.booleans(),
)
def test_fast_header_path_matches_tarfile(
    seed: bytes, edits: list[tuple[int, int]], fix_checksum: bool
) -> None:
    buf = bytearray(seed)
    for where, value in edits:
        buf[where] = value
    if fix_checksum:  # so that edits reach the fields, not only the checksum test
        buf[148:156] = b"%06o\0 " % (256 + sum(buf[:148]) + sum(buf[156:]))
    check_header(bytes(buf))
    assert ft.is_tar_header(bytes(buf)) == (stdlib_or_error(bytes(buf)) is not None)


@pytest.mark.parametrize(
    ("template", "valid"),
    [
        ("{:06o}\0 ", True),
        ("0o{:o}\0", True),  # int(s, 8) takes a prefix, signs, underscores and whitespace
        ("+{:o}\0", True),
        ("\t{:o} \0", True),
        ("\x1c{:o}\0", True),
        ("{:o}\0zz", True),
        ("{:o}z", False),
        ("9{:o}", False),
    ],
)
def test_checksum_prefilter_keeps_what_tarfile_accepts(template: str, valid: bool) -> None:
    buf = bytearray(HEADERS[0])
    checksum = 256 + sum(buf[:148]) + sum(buf[156:])  # the field itself counts as spaces
    field = template.format(checksum).encode("ascii")
    assert len(field) <= 8
    buf[148:156] = field.ljust(8, b"\0")
    assert (stdlib_or_error(bytes(buf)) is not None) == valid
    assert ft.is_tar_header(bytes(buf)) == valid
    check_header(bytes(buf))


# --- gzip ----------------------------------------------------------------------------------------
def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


MEMBERS = [("a.txt", b"alpha\n" * 1000), ("b.bin", os.urandom(70_000)), ("c.txt", b"c\n")]


def staged(run: Run, path: Path) -> dict[str, bytes]:
    result = run(path)
    assert not result.fatal, result.findings
    return {f.public_path: f.read_bytes() for f in result.files}


def test_gzip_members_in_a_row_with_zero_padding(tmp_path: Path, run: Run) -> None:
    data = tar_of(MEMBERS)
    cut = len(data) // 3
    source = tmp_path / "multi.tar.gz"
    source.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]) + bytes(100))
    assert staged(run, source) == dict(MEMBERS)


@pytest.mark.parametrize(
    ("tail", "cut", "error"),
    [
        (b"garbage", 0, "Not a gzipped file"),
        (b"", 12, "Compressed file ended before the end-of-stream marker was reached"),
        (b"", 3, "Compressed file ended before the end-of-stream marker was reached"),
    ],
)
def test_gzip_damage_is_fatal(tmp_path: Path, run: Run, tail: bytes, cut: int, error: str) -> None:
    data = gzip.compress(tar_of(MEMBERS)) + tail
    source = tmp_path / "bad.tar.gz"
    source.write_bytes(data[: len(data) - cut])
    result = run(source)
    assert result.fatal
    assert any(error in f.message for f in result.findings if f.level == "fatal"), result.findings


def test_gzip_length_check(tmp_path: Path, run: Run) -> None:
    data = bytearray(gzip.compress(tar_of(MEMBERS)))
    data[-1] ^= 0x01  # ISIZE in the trailer
    source = tmp_path / "isize.tar.gz"
    source.write_bytes(bytes(data))
    result = run(source)
    assert any("Incorrect length of data produced" in f.message for f in result.findings)


# --- member data across read steps ---------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_members_across_read_steps(tmp_path: Path, run: Run, compress: bool) -> None:
    sizes = [BUFFER - 1, 1, BUFFER, BUFFER + 1, 511, 3 * BUFFER + 7, 513]
    members = [(f"m{i}.bin", os.urandom(size)) for i, size in enumerate(sizes)]
    data = tar_of(members)
    source = tmp_path / ("big.tar.gz" if compress else "big.tar")
    source.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    result = run(source)
    assert not result.fatal, result.findings
    got = {f.public_path: (f.size, f.sha256) for f in result.files}
    assert got == {n: (len(d), hashlib.sha256(d).hexdigest()) for n, d in members}


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write sparse files")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_members(tmp_path: Path, run: Run, fmt: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "sparse.bin", "wb") as f:
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek(3 << 20)
        f.write(b"end")
    (folder / "after.txt").write_bytes(b"after\n")
    source = tmp_path / "sparse.tar.gz"
    tar = ["tar", "--sparse", f"--format={fmt}", "-czf", str(source), "-C", str(folder)]
    if subprocess.run([*tar, "sparse.bin", "after.txt"], check=False).returncode != 0:
        pytest.skip("tar cannot write sparse archives here")
    files = staged(run, source)
    assert files["after.txt"] == b"after\n"
    assert files["sparse.bin"] == (folder / "sparse.bin").read_bytes()


# --- the read-ahead thread -----------------------------------------------------------------------
def unpack_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cairn-unpack"]


def test_read_ahead_thread_ends_with_the_upload(tmp_path: Path, run: Run) -> None:
    good = tmp_path / "good.tar.gz"
    good.write_bytes(gzip.compress(tar_of(MEMBERS)))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(gzip.compress(tar_of(MEMBERS) + os.urandom(3 * BUFFER))[:-5000])
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(bytes(64 * BUFFER)))
    for source in (good, bad, bomb):
        run(source)
        assert unpack_threads() == []


def test_read_ahead_stays_within_its_slots() -> None:
    # The memory bound of decompression: the thread may hold at most `slots` unused results.
    slots, pieces = 3, 40
    released = 0
    ahead: list[int] = []  # for each read: results read but not yet released, this one included

    def read(size: int) -> bytes:
        ahead.append(len(ahead) + 1 - released)
        return bytes(size) if len(ahead) <= pieces else b""

    prefetch = Prefetch(read, slots)
    try:
        taken = 0
        while piece := prefetch.next():
            assert len(piece) == BUFFER
            taken += 1
            released += 1
            prefetch.release()
    finally:
        prefetch.close()
    assert taken == pieces
    assert max(ahead) <= slots, ahead


# --- reader errors -------------------------------------------------------------------------------
def test_reader_errors_become_corrupt_chained_to_the_cause() -> None:
    cause = zlib.error("invalid stored block lengths")
    with pytest.raises(Corrupt) as caught, map_read_errors():
        raise cause
    assert str(caught.value) == "invalid stored block lengths"
    assert caught.value.__cause__ is cause
    with pytest.raises(Corrupt) as caught, map_read_errors():
        raise EOFError
    assert str(caught.value) == "EOFError"  # no message: the type names the cause


@pytest.mark.parametrize(
    "error",
    [Corrupt("already ours"), Abort(Finding("fatal", None, "a limit")), KeyError("a bug")],
)
def test_other_errors_pass_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, map_read_errors():
        raise error
    assert caught.value is error
