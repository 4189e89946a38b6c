"""``pad_sequences``: lists of token ids -> one padded integer array (Keras's semantics)."""

from __future__ import annotations

import numpy as np


def pad_sequences(
    sequences,
    maxlen: int | None = None,
    dtype="int32",
    padding: str = "pre",
    truncating: str = "pre",
    value=0.0,
) -> np.ndarray:
    """Pads (and truncates) sequences to a common length, as ``keras.utils.pad_sequences``.

    Args:
        sequences: a list of sequences (lists or arrays of ids or vectors).
        maxlen: the output length; default the longest sequence.
        dtype: the output dtype.
        padding: "pre" or "post": where the padding goes.
        truncating: "pre" or "post": which end of longer sequences is cut.
        value: the padding value.

    Example:
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=3, padding="post")
        array([[1, 2, 3],
               [4, 0, 0]], dtype=int32)
    """
    for name, option in (("padding", padding), ("truncating", truncating)):
        if option not in ("pre", "post"):
            raise ValueError(f'`{name}` must be "pre" or "post". Received: {name}={option!r}')
    if maxlen is not None and (isinstance(maxlen, bool) or int(maxlen) < 0):
        raise ValueError(f"`maxlen` must be a non-negative integer. Received: maxlen={maxlen!r}")
    arrays = []
    for index, seq in enumerate(sequences):
        try:
            arrays.append(np.asarray(seq))
        except ValueError as err:
            raise ValueError(f"Sequence {index} cannot be read as an array: {err}") from err
    longest = max((len(a) for a in arrays), default=0)
    length = longest if maxlen is None else int(maxlen)
    sample_shape = next((a.shape[1:] for a in arrays if len(a)), ())
    out = np.full((len(arrays), length, *sample_shape), value, dtype=dtype)
    for index, seq in enumerate(arrays):
        if not len(seq) or not length:
            continue
        kept = seq[-length:] if truncating == "pre" else seq[:length]
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"Sequence {index} has elements of shape {kept.shape[1:]}; the others have "
                f"{sample_shape}."
            )
        if padding == "post":
            out[index, : len(kept)] = kept
        else:
            out[index, -len(kept) :] = kept
    return out
