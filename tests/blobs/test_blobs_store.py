"""Behaviour of every BlobStore backend: put/open, dedupe, validation, integrity, atomicity."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.blobs import CHUNK_SIZE, BlobRef, BlobStore, FsspecBlobStore, LocalBlobStore
from cairn.blobs import local as blobs_local
from cairn.errors import BlobMissing, IntegrityError, Invalid

if TYPE_CHECKING:  # importing conftest by name is fragile at run time; hints only
    from conftest import Backdoor

MIB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes of any size."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class ReadOnlyStream:
    """A binary stream with ``read`` but no ``readinto`` (like many network bodies)."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)


# -- put / open ------------------------------------------------------------------------------


def test_put_then_read_round_trip(store: BlobStore) -> None:
    data = b"hello, cairn\n"
    ref = store.put(data)
    assert ref == BlobRef(sha256=sha(data), size=len(data))
    assert store.read_bytes(ref.sha256) == data
    with store.open(ref.sha256) as f:
        assert f.read() == data
    assert store.exists(ref.sha256)
    assert store.size(ref.sha256) == len(data)


def test_blob_ref_is_frozen() -> None:
    ref = BlobRef(sha256="a" * 64, size=1)
    with pytest.raises(AttributeError):
        ref.size = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(lambda d: d, id="bytes"),
        pytest.param(bytearray, id="bytearray"),
        pytest.param(memoryview, id="memoryview"),
        pytest.param(io.BytesIO, id="stream"),
        pytest.param(ReadOnlyStream, id="stream-without-readinto"),
        pytest.param(lambda d: [d[:1000], b"", d[1000:]], id="list-of-chunks"),
        pytest.param(lambda d: (d[i : i + 4097] for i in range(0, len(d), 4097)), id="generator"),
    ],
)
def test_every_input_kind_gives_the_same_blob(store: BlobStore, make_input: object) -> None:
    data = payload(3 * CHUNK_SIZE + 123)
    ref = store.put(make_input(data))  # type: ignore[operator]
    assert ref == BlobRef(sha(data), len(data))
    assert store.read_bytes(ref.sha256) == data
    assert list(store.iter_hashes()) == [ref.sha256]


def test_put_real_file_stream_and_put_file(store: BlobStore, tmp_path: Path) -> None:
    data = payload(9 * MIB + 7, seed=1)  # several put_file read steps plus a tail
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        from_stream = store.put(f)
    from_path = store.put_file(path)
    from_str_path = store.put_file(str(path))
    assert from_stream == from_path == from_str_path == BlobRef(sha(data), len(data))
    assert store.read_bytes(from_path.sha256) == data


def test_put_file_of_empty_and_small_files(store: BlobStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    small = tmp_path / "small"
    small.write_bytes(b"x" * 100)
    assert store.put_file(empty) == BlobRef(sha(b""), 0)
    assert store.put_file(small) == BlobRef(sha(b"x" * 100), 100)


@pytest.mark.skipif(not Path("/proc/version").exists(), reason="needs Linux /proc")
def test_put_file_reads_files_that_report_size_zero(store: BlobStore) -> None:
    # procfs files claim st_size 0 but have content; a kernel copy would store them empty.
    expected = Path("/proc/version").read_bytes()
    ref = store.put_file("/proc/version")
    assert ref == BlobRef(sha(expected), len(expected))


def test_put_file_across_filesystems(tmp_path: Path) -> None:
    # The kernel refuses copy_file_range across filesystems (EXDEV): the buffered copy runs.
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temp dir")
    store = LocalBlobStore(tmp_path / "blobs")
    data = payload(5 * MIB + 3, seed=11)
    source = shm / f"cairn-test-{os.getpid()}-{tmp_path.name}"
    source.write_bytes(data)
    try:
        assert store.put_file(source) == BlobRef(sha(data), len(data))
    finally:
        source.unlink()
    assert store.read_bytes(sha(data)) == data
    assert os.listdir(store.root / ".tmp") == []


def test_put_file_of_missing_path_raises_oserror(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "nope")


def test_empty_blob(store: BlobStore) -> None:
    ref = store.put(b"")
    assert ref == BlobRef(sha(b""), 0)
    assert store.read_bytes(ref.sha256) == b""
    assert store.put(iter([])) == ref
    assert store.put(io.BytesIO()) == ref
    assert store.size(ref.sha256) == 0
    assert list(store.iter_hashes()) == [ref.sha256]


def test_reads_in_pieces(store: BlobStore) -> None:
    data = payload(2 * CHUNK_SIZE + 17, seed=2)
    ref = store.put(data)
    with store.open(ref.sha256) as f:
        assert f.readable()
        assert not f.writable()
        head = f.read(10)
        middle = f.read(CHUNK_SIZE)
        rest = f.read()
        assert f.read() == b""
        assert f.read(5) == b""
    assert head + middle + rest == data


def test_read_into_buffer_and_iterate_lines(store: BlobStore) -> None:
    data = b"".join(b"line %d\n" % i for i in range(10_000))
    ref = store.put(data)
    with store.open(ref.sha256) as f:
        assert list(f) == data.splitlines(keepends=True)
    with store.open(ref.sha256) as f:
        buffer = bytearray(len(data) + 10)
        assert f.readinto(buffer) == len(data)
        assert bytes(buffer[: len(data)]) == data


def test_put_rejects_text_and_paths(store: BlobStore, backdoor: Backdoor, tmp_path: Path) -> None:
    for bad in ["some text", io.StringIO("text"), tmp_path, ["ok", b"bytes"], [b"ok", 3]]:
        with pytest.raises(Invalid):
            store.put(bad)  # type: ignore[arg-type]
    assert list(store.iter_hashes()) == []
    assert backdoor.temp_names() == []


# -- dedupe ------------------------------------------------------------------------------------


def test_same_content_twice_is_stored_once(store: BlobStore, backdoor: Backdoor) -> None:
    data = payload(CHUNK_SIZE + 5, seed=3)
    first = store.put(data)
    second = store.put(io.BytesIO(data))
    third = store.put(iter([data]))
    assert first == second == third
    assert list(store.iter_hashes()) == [first.sha256]
    assert backdoor.temp_names() == []


def test_put_heals_a_truncated_copy(store: BlobStore, backdoor: Backdoor) -> None:
    data = payload(50_000, seed=4)
    ref = store.put(data)
    backdoor.write_raw(ref.sha256, data[:100])
    assert store.put(io.BytesIO(data)) == ref
    assert store.read_bytes(ref.sha256) == data


# -- exists / size / delete / iter_hashes ------------------------------------------------------


def test_exists_size_delete_and_iter_hashes(store: BlobStore) -> None:
    refs = [store.put(payload(n, seed=n)) for n in (1, 10, 1000, 100_000)]
    assert list(store.iter_hashes()) == sorted(r.sha256 for r in refs)
    for ref in refs:
        assert store.exists(ref.sha256)
        assert store.size(ref.sha256) == ref.size

    gone = refs[1]
    store.delete(gone.sha256)
    store.delete(gone.sha256)  # idempotent
    assert not store.exists(gone.sha256)
    with pytest.raises(BlobMissing):
        store.size(gone.sha256)
    assert list(store.iter_hashes()) == sorted(r.sha256 for r in refs if r != gone)


def test_iter_hashes_ignores_foreign_files(store: BlobStore, backdoor: Backdoor) -> None:
    ref = store.put(b"real")
    if isinstance(store, LocalBlobStore):
        (store.root / "README").write_text("not a blob")
        (store.root / "ab").mkdir()
        (store.root / "ab" / "zz").mkdir()
        (store.root / "ab" / "zz" / ("ab" + "0" * 62)).write_bytes(b"misplaced")
    else:
        assert isinstance(store, FsspecBlobStore)
        store.fs.pipe_file(store.root + "/README", b"not a blob")
        store.fs.makedirs(store.root + "/ab/zz", exist_ok=True)
        store.fs.pipe_file(store.root + "/ab/zz/ab" + "0" * 62, b"misplaced")
    assert list(store.iter_hashes()) == [ref.sha256]


def test_missing_blob(store: BlobStore) -> None:
    absent = sha(b"never stored")
    assert not store.exists(absent)
    with pytest.raises(BlobMissing, match=absent):
        store.open(absent)
    with pytest.raises(BlobMissing):
        store.read_bytes(absent)
    with pytest.raises(BlobMissing):
        store.size(absent)
    store.delete(absent)


BAD_HASHES = [
    "../etc/passwd",
    "../../" + "a" * 58,
    "A" * 64,
    sha(b"x").upper(),
    "abc",
    "",
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "ab/cd/" + "a" * 58,
    " " + "a" * 63,
    "a" * 64 + "\n",
]


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_malformed_hashes_are_invalid(store: BlobStore, bad: str) -> None:
    calls = [
        store.open,
        store.read_bytes,
        store.exists,
        store.size,
        store.delete,
        store.local_path,
    ]
    for call in calls:
        with pytest.raises(Invalid):
            call(bad)


def test_local_path(store: BlobStore) -> None:
    ref = store.put(b"serve me")
    path = store.local_path(ref.sha256)
    if isinstance(store, LocalBlobStore) or str(getattr(store, "url", "")).startswith("file:"):
        assert path is not None
        assert path.read_bytes() == b"serve me"
        with pytest.raises(BlobMissing):
            store.local_path(sha(b"absent"))
    else:
        assert path is None


def test_local_blobs_are_read_only_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put(b"immutable")
    path = store.local_path(ref.sha256)
    assert path.parent.parent == store.root
    assert path.parent.name == ref.sha256[:2]
    assert path.stat().st_mode & 0o222 == 0


# -- integrity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 5000, 3 * CHUNK_SIZE + 1])
def test_flipped_byte_is_detected(store: BlobStore, backdoor: Backdoor, size: int) -> None:
    data = payload(size, seed=5)
    ref = store.put(data)
    backdoor.flip_byte(ref.sha256, index=size // 2)

    with pytest.raises(IntegrityError, match=ref.sha256), store.open(ref.sha256) as f:
        f.read()
    with pytest.raises(IntegrityError, match=ref.sha256):
        store.read_bytes(ref.sha256)


def test_corruption_surfaces_on_the_final_read(store: BlobStore, backdoor: Backdoor) -> None:
    data = payload(4 * CHUNK_SIZE, seed=6)
    ref = store.put(data)
    backdoor.flip_byte(ref.sha256, index=len(data) - 1)
    with store.open(ref.sha256) as f:
        assert f.read(CHUNK_SIZE) == data[:CHUNK_SIZE]  # early bytes flow before the verdict
        with pytest.raises(IntegrityError) as caught:
            while f.read(CHUNK_SIZE):
                pass
        assert caught.value.detail["sha256"] == ref.sha256
        with pytest.raises(IntegrityError):  # and it stays failed
            f.read()


@pytest.mark.parametrize("damage", ["truncate", "append", "empty"])
def test_size_changes_are_detected(store: BlobStore, backdoor: Backdoor, damage: str) -> None:
    data = payload(100_000, seed=7)
    ref = store.put(data)
    damaged = {"truncate": data[:-1], "append": data + b"\0", "empty": b""}[damage]
    backdoor.write_raw(ref.sha256, damaged)
    with pytest.raises(IntegrityError, match=ref.sha256):
        store.read_bytes(ref.sha256)


def test_small_reads_of_a_corrupt_small_blob_raise(store: BlobStore, backdoor: Backdoor) -> None:
    ref = store.put(b"0123456789")
    backdoor.flip_byte(ref.sha256, index=3)
    with store.open(ref.sha256) as f, pytest.raises(IntegrityError):
        f.read(2)


# -- atomicity and concurrency -----------------------------------------------------------------


def test_failed_put_leaves_nothing_behind(store: BlobStore, backdoor: Backdoor) -> None:
    def broken() -> Iterator[bytes]:
        yield payload(CHUNK_SIZE, seed=8)
        yield b"more"
        raise RuntimeError("upload interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        store.put(broken())
    assert list(store.iter_hashes()) == []
    assert backdoor.temp_names() == []
    assert not store.exists(sha(payload(CHUNK_SIZE, seed=8) + b"more"))


def test_failed_stream_read_leaves_nothing_behind(store: BlobStore, backdoor: Backdoor) -> None:
    class FailingStream(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError("connection reset")
            view = memoryview(buffer)  # type: ignore[arg-type]
            view[:10] = b"x" * 10
            return 10

    with pytest.raises(OSError, match="reset"):
        store.put(FailingStream())
    assert list(store.iter_hashes()) == []
    assert backdoor.temp_names() == []


def test_concurrent_puts_of_the_same_content(store: BlobStore, backdoor: Backdoor) -> None:
    data = payload(2 * CHUNK_SIZE + 99, seed=9)
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[BlobRef] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            source = io.BytesIO(data) if i % 2 else iter([data[:1000], data[1000:]])
            results.append(store.put(source))
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert errors == []
    assert results == [BlobRef(sha(data), len(data))] * threads
    assert list(store.iter_hashes()) == [sha(data)]
    assert backdoor.temp_names() == []
    assert store.read_bytes(sha(data)) == data


def test_concurrent_put_files_of_the_same_content(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    data = payload(3 * MIB, seed=10)
    sources = []
    for i in range(6):
        path = tmp_path / f"src-{i}"
        path.write_bytes(data)
        sources.append(path)
    results: list[BlobRef] = []
    pool = [threading.Thread(target=lambda p=p: results.append(store.put_file(p))) for p in sources]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert results == [BlobRef(sha(data), len(data))] * len(sources)
    assert list(store.iter_hashes()) == [sha(data)]
    assert os.listdir(store.root / ".tmp") == []


# -- properties --------------------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=20_000))
def test_put_read_round_trips_any_bytes(store: BlobStore, data: bytes) -> None:
    ref = store.put(data)
    assert ref == BlobRef(sha(data), len(data))
    assert store.read_bytes(ref.sha256) == data


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.binary(max_size=3000), max_size=8))
def test_chunked_put_equals_joined_bytes(store: BlobStore, chunks: list[bytes]) -> None:
    joined = b"".join(chunks)
    ref = store.put(iter(chunks))
    assert ref == BlobRef(sha(joined), len(joined))
    assert store.read_bytes(ref.sha256) == joined


def test_ingest_files_moves_a_batch_in(store: BlobStore, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    contents = [b"alpha\n", b"beta\n", b"alpha\n", b""]
    paths = []
    for i, data in enumerate(contents):
        path = batch / f"f{i}"
        path.write_bytes(data)
        paths.append(path)
    refs = store.ingest_files(paths)
    assert [r.sha256 for r in refs] == [hashlib.sha256(d).hexdigest() for d in contents]
    assert refs[0] == refs[2]  # same content, one blob
    assert [store.read_bytes(r.sha256) for r in refs] == contents
    assert list(batch.iterdir()) == []  # every file consumed


def test_ingest_files_with_known_refs(store: BlobStore, tmp_path: Path) -> None:
    path = tmp_path / "known"
    path.write_bytes(b"known content")
    ref = BlobRef(hashlib.sha256(b"known content").hexdigest(), 13)
    assert store.ingest_files([path], refs=[ref]) == [ref]
    assert store.read_bytes(ref.sha256) == b"known content"
    assert not path.exists()


def test_ingested_blobs_are_read_only_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    path = tmp_path / "upload"
    path.write_bytes(b"ingested")
    [ref] = store.ingest_files([path])
    assert store.local_path(ref.sha256).stat().st_mode & 0o222 == 0


def test_ingest_files_across_filesystems(tmp_path: Path) -> None:
    # A file the store's syncfs does not cover cannot be renamed in either: put_file copies it.
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temp dir")
    store = LocalBlobStore(tmp_path / "blobs")
    near, far = tmp_path / "near", shm / f"cairn-test-{os.getpid()}-{tmp_path.name}"
    near.write_bytes(b"same filesystem")
    far.write_bytes(b"another filesystem")
    try:
        refs = store.ingest_files([near, far])
    finally:
        far.unlink(missing_ok=True)
    assert [store.read_bytes(r.sha256) for r in refs] == [b"same filesystem", b"another filesystem"]
    assert not near.exists() and not far.exists()
    assert os.listdir(store.root / ".tmp") == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")
def test_syncfs_is_used_on_linux(tmp_path: Path) -> None:
    # Without it ingest stays durable but fsyncs every file, which no other test would notice.
    assert blobs_local._syncfs(str(tmp_path)) is True
    with pytest.raises(FileNotFoundError):
        blobs_local._syncfs(str(tmp_path / "missing"))


def test_ingest_files_with_a_wrong_ref_is_caught_on_read(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    path = tmp_path / "liar"
    path.write_bytes(b"actual bytes")
    wrong = BlobRef(hashlib.sha256(b"claimed bytes").hexdigest(), 12)
    store.ingest_files([path], refs=[wrong])
    with pytest.raises(IntegrityError):
        store.read_bytes(wrong.sha256)
    with pytest.raises(ValueError):
        store.ingest_files([tmp_path / "a", tmp_path / "b"], refs=[wrong])
