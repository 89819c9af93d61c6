"""An RFC 6962 / RFC 9162 Merkle tree: hashes, proofs and their checks, storage-free.

Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``; the tree
of ``n`` leaves splits at the largest power of two below ``n`` (RFC 9162 section 2.1.1).

A log keeps the hash of every *perfect* subtree once it is complete: node ``(level, index)``
covers leaves ``[index * 2**level, (index + 1) * 2**level)``, level 0 being the leaf hashes.
Any subtree a proof needs is then a fold of at most ``log2(n)`` stored nodes, so proofs cost
``O(log n)`` lookups whatever the log's size. The functions here only plan which nodes they
need (``*_keys``) and compute from what they are given; where the nodes live is the caller's.
Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and needs nothing but hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "Key",
    "appended_nodes",
    "consistency_ranges",
    "inclusion_ranges",
    "keys_for",
    "leaf_hash",
    "left_siblings",
    "node_hash",
    "range_hash",
    "verify_consistency",
    "verify_inclusion",
]

Key = tuple[int, int]  # (level, index) of a perfect subtree
Range = tuple[int, int]  # leaves [start, end)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect(start: int, end: int) -> list[Key]:
    """The perfect subtrees whose fold is the hash of ``[start, end)``: the bits of its size,
    largest first (``start`` is aligned to the largest, as every range a proof uses is)."""
    keys, size = [], end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def keys_for(ranges: Iterable[Range]) -> set[Key]:
    """Every stored node the hashes of ``ranges`` need."""
    return {key for start, end in ranges for key in _perfect(start, end)}


def range_hash(start: int, end: int, nodes: Mapping[Key, bytes]) -> bytes:
    """MTH of leaves ``[start, end)`` from the stored perfect subtrees."""
    hashes = [nodes[key] for key in _perfect(start, end)]
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of RFC 6962's PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"Leaf {index} is not in a tree of {size}.")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees of RFC 6962's PROOF(first, D[0:second]) for 0 < first <= second."""
    if not 0 < first <= second:
        raise ValueError(f"No consistency proof from a tree of {first} to one of {second}.")
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def left_siblings(index: int) -> list[Key]:
    """The stored nodes that appending leaf ``index`` completes new subtrees with."""
    keys, level, position = [], 0, index
    while position & 1:
        keys.append((level, position - 1))
        level, position = level + 1, position >> 1
    return keys


def appended_nodes(index: int, leaf: bytes, siblings: Mapping[Key, bytes]) -> dict[Key, bytes]:
    """The nodes appending leaf ``index`` stores: the leaf and each subtree it completes."""
    nodes = {(0, index): leaf}
    level, position, current = 0, index, leaf
    while position & 1:
        current = node_hash(siblings[(level, position - 1)], current)
        level, position = level + 1, position >> 1
        nodes[(level, position)] = current
    return nodes


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree of ``second`` an append-only extension of the
    tree of ``first``?"""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if not path:
        return False
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0
