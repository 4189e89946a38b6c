"""``keras.ops.linalg``: decompositions, solves and norms on torch.linalg."""

__all__: list[str] = []
