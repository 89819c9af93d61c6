"""The Merkle tree against a naive RFC 6962 implementation (MTH, PATH and PROOF written as the
RFC states them, recursively over the leaf list), and against tampering."""

from __future__ import annotations

import pytest

from cairn.archive import merkle


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = merkle._split(len(leaves))
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = merkle._split(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [_mth(leaves)]
    k = merkle._split(len(leaves))
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


class Log:
    """Leaves appended one at a time, keeping only the nodes ``appended_nodes`` returns."""

    def __init__(self) -> None:
        self.nodes: dict[merkle.Key, bytes] = {}
        self.size = 0

    def append(self, entry: bytes) -> None:
        siblings = {key: self.nodes[key] for key in merkle.left_siblings(self.size)}
        self.nodes.update(merkle.appended_nodes(self.size, merkle.leaf_hash(entry), siblings))
        self.size += 1

    def root(self, size: int) -> bytes:
        return merkle.range_hash(0, size, self.nodes)

    def hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        return [merkle.range_hash(start, end, self.nodes) for start, end in ranges]


LEAVES = [f"entry {i}".encode() for i in range(40)]


@pytest.fixture(scope="module")
def log() -> Log:
    built = Log()
    for entry in LEAVES:
        built.append(entry)
    return built


def test_roots_match_the_rfc_for_every_size(log: Log) -> None:
    for size in range(1, len(LEAVES) + 1):
        assert log.root(size) == _mth(LEAVES[:size]), size


def test_inclusion_proofs_match_the_rfc_and_verify(log: Log) -> None:
    for size in range(1, len(LEAVES) + 1):
        root = log.root(size)
        for index in range(size):
            proof = log.hashes(merkle.inclusion_ranges(index, size))
            assert proof == _path(index, LEAVES[:size]), (index, size)
            leaf = merkle.leaf_hash(LEAVES[index])
            assert merkle.verify_inclusion(leaf, index, size, proof, root)
            other = merkle.leaf_hash(b"not logged")
            assert not merkle.verify_inclusion(other, index, size, proof, root)
            if size > 1:
                assert not merkle.verify_inclusion(leaf, (index + 1) % size, size, proof, root)
                assert not merkle.verify_inclusion(leaf, index, size, proof[:-1], root)


def test_consistency_proofs_match_the_rfc_and_verify(log: Log) -> None:
    for second in range(1, len(LEAVES) + 1):
        for first in range(1, second + 1):
            proof = log.hashes(merkle.consistency_ranges(first, second))
            assert proof == _subproof(first, LEAVES[:second], True), (first, second)
            old, new = log.root(first), log.root(second)
            assert merkle.verify_consistency(first, second, old, new, proof)
            forged = _mth([b"rewritten", *LEAVES[1:first]])
            assert not merkle.verify_consistency(first, second, forged, new, proof)
            if proof:
                bent = [proof[0][::-1], *proof[1:]]
                assert not merkle.verify_consistency(first, second, old, new, bent)


def test_out_of_range_requests_are_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(0, 3)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(4, 3)
    assert not merkle.verify_inclusion(b"x" * 32, 5, 5, [], b"x" * 32)
    assert not merkle.verify_consistency(0, 5, b"", b"", [])
