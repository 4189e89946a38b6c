"""Tiny helpers over nested lists/tuples/dicts of tensors (Keras's ``tree``)."""

from __future__ import annotations


def flatten(structure) -> list:
    if isinstance(structure, (list, tuple)):
        out = []
        for item in structure:
            out.extend(flatten(item))
        return out
    if isinstance(structure, dict):
        out = []
        for key in sorted(structure):
            out.extend(flatten(structure[key]))
        return out
    return [structure]


def map_structure(fn, structure):
    if isinstance(structure, list):
        return [map_structure(fn, s) for s in structure]
    if isinstance(structure, tuple):
        return tuple(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def pack_sequence_as(structure, flat: list):
    """Inverse of :func:`flatten`: refills ``structure``'s shape from ``flat``."""
    it = iter(flat)

    def take(s):
        if isinstance(s, list):
            return [take(x) for x in s]
        if isinstance(s, tuple):
            return tuple(take(x) for x in s)
        if isinstance(s, dict):
            return {k: take(s[k]) for k in sorted(s)}
        return next(it)

    packed = take(structure)
    if isinstance(structure, dict):
        packed = {k: packed[k] for k in structure}
    return packed
