"""pad_sequences against Keras's documented semantics, written out by hand."""

import numpy as np
import pytest

from distkeras.utils import pad_sequences


def test_pre_padding_and_truncation_are_the_defaults():
    out = pad_sequences([[1], [2, 3], [4, 5, 6, 7]], maxlen=3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [5, 6, 7]])
    assert out.dtype == np.int32


def test_post_padding_post_truncation_value_and_dtype():
    out = pad_sequences(
        [[1, 2, 3, 4], [5]], maxlen=2, padding="post", truncating="post", value=-1, dtype="float32"
    )
    np.testing.assert_array_equal(out, [[1, 2], [5, -1]])
    assert out.dtype == np.float32


def test_default_length_is_the_longest_and_vectors_keep_their_shape():
    np.testing.assert_array_equal(pad_sequences([[1, 2], []]), [[1, 2], [0, 0]])
    vectors = pad_sequences([np.ones((1, 2)), np.ones((2, 2))], padding="post")
    assert vectors.shape == (2, 2, 2) and vectors[0, 1].tolist() == [0, 0]


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences([[1]], maxlen=-2)
