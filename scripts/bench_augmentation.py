"""Per-batch time of a few augmentation layers, distkeras vs Keras 3 (torch backend), CPU.

.venv/bin/python scripts/bench_augmentation.py
"""

import os
import time

import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

from distkeras import layers  # noqa: E402

torch.set_num_threads(1)
x = torch.rand(64, 32, 32, 3) * 255
CASES = [
    ("RandomFlip", {}),
    ("RandomRotation", {"factor": 0.1}),
    ("RandomZoom", {"height_factor": 0.1}),
    ("RandomContrast", {"factor": 0.2}),
]
for name, kwargs in CASES:
    times = []
    for module in (layers, keras.layers):
        layer = getattr(module, name)(**kwargs, seed=1)
        layer(x, training=True)
        start = time.perf_counter()
        for _ in range(20):
            layer(x, training=True)
        times.append((time.perf_counter() - start) / 20 * 1e3)
    print(f"{name}: distkeras {times[0]:.2f} ms, keras {times[1]:.2f} ms per 64x32x32x3 batch")
