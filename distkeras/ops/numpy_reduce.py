"""Reductions and statistics of ``keras.ops.numpy`` (sum, mean, quantile, nan-aware variants)."""

__all__: list[str] = []
