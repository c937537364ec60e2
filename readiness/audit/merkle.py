"""RFC 6962 (Certificate Transparency) Merkle tree hashes over a list of leaves.

The audit checkpoints commit every chain's head with the tree of §2.1, the one Trillian and
CT logs use, so the root can be checked with any implementation of that RFC: leaves and
inner nodes are hashed with different one-byte prefixes (a leaf can never pass for a node),
and an inclusion proof of a leaf is the audit path of §2.1.1.
"""

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_root(hashes[:k]), _root(hashes[k:]))


def root(leaves: list[bytes]) -> str:
    """MTH(D[n]) of the leaves' data, hex."""
    if not leaves:
        return EMPTY_ROOT
    return _root([leaf_hash(leaf) for leaf in leaves]).hex()


def inclusion_proof(leaves: list[bytes], index: int) -> list[str]:
    """PATH(m, D[n]): the sibling hashes that lead from leaf `index` to the root, hex."""

    def path(m: int, hashes: list[bytes]) -> list[bytes]:
        if len(hashes) <= 1:
            return []
        k = _split(len(hashes))
        if m < k:
            return [*path(m, hashes[:k]), _root(hashes[k:])]
        return [*path(m - k, hashes[k:]), _root(hashes[:k])]

    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    return [h.hex() for h in path(index, [leaf_hash(leaf) for leaf in leaves])]


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: list[str], root_hex: str):
    """Whether `leaf` is leaf `index` of the tree of `tree_size` leaves with root `root_hex`
    (RFC 9162 §2.1.3.2, the same path as RFC 6962)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    current = leaf_hash(leaf)
    for sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            current = _node(sibling, current)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            current = _node(current, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and current.hex() == root_hex
