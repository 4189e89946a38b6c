"""Products and sorting of ``keras.ops.numpy`` (dot, matmul, einsum, sort, unique, ...)."""

__all__: list[str] = []
