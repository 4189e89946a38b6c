"""The string hashes TensorFlow's preprocessing ops use, in pure Python, bit for bit.

Keras 3's Hashing, HashedCrossing and the lookup layers' OOV buckets call
``tf.strings.to_hash_bucket_fast`` (FarmHash ``Fingerprint64``, the ``farmhashna`` 64-bit
hash), ``tf.strings.to_hash_bucket_strong`` (SipHash-2-4 keyed by two 64-bit words) and
``tf.sparse.cross_hashed`` (``FingerprintCat64`` chained from a fixed key). Reproducing them
exactly keeps bucket ids, and so trained embeddings, interchangeable with Keras models.

Hashing runs once per distinct value (callers pass ``np.unique`` results), so the Python
arithmetic here is not on any per-sample hot path.
"""

from __future__ import annotations

import struct

import numpy as np

_M = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_CAT_MUL = 0xC6A4A7935BD1E995
# tf.sparse.cross_hashed's key when none is given (sparse_ops._DEFAULT_HASH_KEY).
DEFAULT_CROSS_KEY = 0xDECAFCAFFE


def _fetch64(s: bytes, i: int) -> int:
    return struct.unpack_from("<Q", s, i)[0]


def _fetch32(s: bytes, i: int) -> int:
    return struct.unpack_from("<I", s, i)[0]


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _hash0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = _K2 + n * 2
        a = (_fetch64(s, 0) + _K2) & _M
        b = _fetch64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _hash16(c, d, mul)
    if n >= 4:
        mul = _K2 + n * 2
        return _hash16(n + (_fetch32(s, 0) << 3), _fetch32(s, n - 4), mul)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _hash17to32(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_fetch64(s, 0) * _K1) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    return _hash16(
        (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
        (a + _rot((b + _K2) & _M, 18) + c) & _M,
        mul,
    )


def _hash33to64(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a = (_fetch64(s, 0) * _K2) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _hash16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_fetch64(s, 16) * mul) & _M
    f = _fetch64(s, 24)
    g = ((y + _fetch64(s, n - 32)) * mul) & _M
    h = ((z + _fetch64(s, n - 24)) * mul) & _M
    return _hash16(
        (_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
        (e + _rot((f + a) & _M, 18) + g) & _M,
        mul,
    )


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = (_fetch64(s, i + 8 * k) for k in range(4))
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(data: bytes) -> int:
    """FarmHash ``Fingerprint64`` (``farmhashna::Hash64``) of ``data``, as TensorFlow's."""
    n = len(data)
    if n <= 16:
        return _hash0to16(data)
    if n <= 32:
        return _hash17to32(data)
    if n <= 64:
        return _hash33to64(data)
    seed = 81
    y = (seed * _K1 + 113) & _M
    z = (_shift_mix((y * _K2 + 113) & _M) * _K2) & _M
    v0 = v1 = w0 = w1 = 0
    x = (seed * _K2 + _fetch64(data, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    pos = 0
    while True:
        x = (_rot((x + y + v0 + _fetch64(data, pos + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v1 + _fetch64(data, pos + 48)) & _M, 42) * _K1) & _M
        x ^= w1
        y = (y + v0 + _fetch64(data, pos + 40)) & _M
        z = (_rot((z + w0) & _M, 33) * _K1) & _M
        v0, v1 = _weak32(data, pos, (v1 * _K1) & _M, (x + w0) & _M)
        w0, w1 = _weak32(data, pos + 32, (z + w1) & _M, (y + _fetch64(data, pos + 16)) & _M)
        z, x = x, z
        pos += 64
        if pos == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    pos = last64
    w0 = (w0 + ((n - 1) & 63)) & _M
    v0 = (v0 + w0) & _M
    w0 = (w0 + v0) & _M
    x = (_rot((x + y + v0 + _fetch64(data, pos + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v1 + _fetch64(data, pos + 48)) & _M, 42) * mul) & _M
    x ^= (w1 * 9) & _M
    y = (y + v0 * 9 + _fetch64(data, pos + 40)) & _M
    z = (_rot((z + w0) & _M, 33) * mul) & _M
    v0, v1 = _weak32(data, pos, (v1 * mul) & _M, (x + w0) & _M)
    w0, w1 = _weak32(data, pos + 32, (z + w1) & _M, (y + _fetch64(data, pos + 16)) & _M)
    z, x = x, z
    return _hash16(
        (_hash16(v0, w0, mul) + _shift_mix(y) * _K0 + z) & _M,
        (_hash16(v1, w1, mul) + x) & _M,
        mul,
    )


def siphash24(key: tuple[int, int], data: bytes) -> int:
    """SipHash-2-4 of ``data`` keyed by two 64-bit words (TensorFlow's ``StrongKeyedHash``)."""
    k0, k1 = key[0] & _M, key[1] & _M
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(count):
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 = (v0 + v1) & _M
            v1 = _rot(v1, 51) ^ v0  # rotate left 13 = rotate right 51
            v0 = _rot(v0, 32)
            v2 = (v2 + v3) & _M
            v3 = _rot(v3, 48) ^ v2  # left 16
            v0 = (v0 + v3) & _M
            v3 = _rot(v3, 43) ^ v0  # left 21
            v2 = (v2 + v1) & _M
            v1 = _rot(v1, 47) ^ v2  # left 17
            v2 = _rot(v2, 32)

    n = len(data)
    for i in range(0, n - n % 8, 8):
        m = _fetch64(data, i)
        v3 ^= m
        rounds(2)
        v0 ^= m
    tail = data[n - n % 8 :] + bytes(7 - n % 8)
    m = (int.from_bytes(tail, "little") | ((n & 0xFF) << 56)) & _M
    v3 ^= m
    rounds(2)
    v0 ^= m
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TensorFlow's ``FingerprintCat64``: combines two fingerprints (feature crosses)."""
    result = fp1 ^ _CAT_MUL
    result ^= (_shift_mix((fp2 * _CAT_MUL) & _M) * _CAT_MUL) & _M
    result = (result * _CAT_MUL) & _M
    result = (_shift_mix(result) * _CAT_MUL) & _M
    return _shift_mix(result)


def as_hash_strings(values: np.ndarray) -> np.ndarray:
    """Strings to hash, as TensorFlow forms them: strings as given, integers (and floats,
    truncated to int64 first) as their decimal text (``tf.strings.as_string``)."""
    if values.dtype.kind == "f":
        values = values.astype(np.int64)
    if values.dtype.kind in "iub":
        return values.astype(np.int64).astype(str)
    return values


def hash_buckets(values: np.ndarray, num_buckets: int, salt=None) -> np.ndarray:
    """``to_hash_bucket_fast`` (or ``_strong`` with a two-word ``salt``) of every element."""
    flat = np.asarray(as_hash_strings(values)).reshape(-1)
    uniques, inverse = np.unique(flat, return_inverse=True)
    codes = np.empty(len(uniques), dtype=np.int64)
    for i, text in enumerate(uniques.tolist()):
        data = text if isinstance(text, bytes) else str(text).encode("utf-8")
        digest = fingerprint64(data) if salt is None else siphash24(salt, data)
        codes[i] = digest % num_buckets
    return codes[inverse].reshape(np.shape(values))


def cross_fingerprint(value) -> int:
    """A feature's 64-bit value in ``cross_hashed``: strings fingerprinted, ints as is."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        return fingerprint64(data)
    return int(value) & _M
