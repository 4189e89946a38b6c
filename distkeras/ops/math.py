"""Keras's math ops (``keras.ops`` top level): erf, fft, segment reductions, top_k, stft, ..."""

__all__: list[str] = []
