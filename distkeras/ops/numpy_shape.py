"""Shape, indexing, joining and splitting ops of ``keras.ops.numpy``."""

__all__: list[str] = []
