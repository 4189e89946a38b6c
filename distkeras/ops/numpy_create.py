"""Tensor creation and window functions of ``keras.ops.numpy`` (arange, eye, hanning, ...)."""

__all__: list[str] = []
