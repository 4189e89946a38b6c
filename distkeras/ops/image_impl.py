"""``keras.ops.image``: resizing, affine and color transforms, patches."""

__all__: list[str] = []
