"""Pieces of the TensorBoard callback: step-phase timer, gradient-norm observer, summaries.

The timer and the observer are installed on the model (``model._step_timer``,
``model._gradient_observer``) and called by the training step; both keep their work on the
device and are read once per logged step. Each one uninstalls itself when it finds itself
called from a later ``fit`` that it does not belong to (a fit that raised never reached
``on_train_end``), so a stale hook never slows down another run.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

PHASES = ("data", "forward_backward", "communication", "optimizer")


class StepTimer:
    """Seconds spent per step phase, summed over an epoch.

    ``phase(name)`` closes the phase that ran since the previous call: "data" covers
    everything between the previous step's optimizer update and this step's forward pass
    (fetching the batch, metric bookkeeping, callbacks). On CUDA each call synchronizes the
    device so the times are those of the kernels, not of their launches.
    """

    def __init__(self, model, device: torch.device):
        self._model = model
        self._history = model.history
        self._sync = torch.cuda.synchronize if device.type == "cuda" else None
        self.start_epoch()

    def start_epoch(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        if self._sync is not None:
            self._sync()
        self._last = time.perf_counter()

    def phase(self, name: str) -> None:
        if self._model.history is not self._history:
            self._model._step_timer = None
            return
        if self._sync is not None:
            self._sync()
        now = time.perf_counter()
        self.totals[name] = self.totals.get(name, 0.0) + (now - self._last)
        self.counts[name] = self.counts.get(name, 0) + 1
        self._last = now

    def means(self) -> dict[str, float]:
        """Mean seconds per step of every phase seen this epoch."""
        return {name: self.totals[name] / self.counts[name] for name in self.totals}


class GradNormObserver:
    """Per-layer L2 norms of the final gradients, computed on the device.

    One ``torch._foreach_norm`` over all gradients, squared and summed per layer with one
    ``index_add_``: a handful of kernels and no host sync. It runs only on the steps that will
    be logged (``due``); ``read()`` copies the latest norms to the host once.
    """

    def __init__(self, model, freq: int | None, epoch_steps: int | None):
        self._history = model.history
        self.freq = freq
        self.epoch_steps = epoch_steps
        self.global_calls = 0
        self.epoch_calls = 0
        self._latest: torch.Tensor | None = None
        self.params: list[torch.Tensor] | None = None  # set on the first step (model built)
        self.names: list[str] = []

    def _setup(self, model) -> None:
        owner: dict[int, str] = {}
        for layer in getattr(model, "layers", []):
            for weight in layer.weights:
                owner.setdefault(id(weight), layer.name)
        self.params = [p for _, p in model.named_parameters() if p.requires_grad]
        index = []
        for param in self.params:
            name = owner.get(id(param), model.name)
            if name not in self.names:
                self.names.append(name)
            index.append(self.names.index(name))
        device = self.params[0].device if self.params else torch.device("cpu")
        self._index = torch.tensor(index, dtype=torch.long, device=device)

    def start_epoch(self) -> None:
        self.epoch_calls = 0

    def _due(self) -> bool:
        if self.freq is not None:
            return self.global_calls % self.freq == 0
        return self.epoch_steps is None or self.epoch_calls >= self.epoch_steps

    def __call__(self, model) -> None:
        if model.history is not self._history:
            model._gradient_observer = None
            return
        self.global_calls += 1
        self.epoch_calls += 1
        if self.params is None:
            self._setup(model)
        if not self.params or not self._due():
            return
        grads, index = [], self._index
        for param in self.params:
            if param.grad is not None:
                grads.append(param.grad)
        if not grads:
            return
        if len(grads) != len(self.params):  # some parameters got no gradient this step
            keep = [i for i, p in enumerate(self.params) if p.grad is not None]
            index = self._index[torch.tensor(keep, device=self._index.device)]
        with torch.no_grad():
            squares = torch.stack(torch._foreach_norm(grads)).float().square()
            norms = torch.zeros(len(self.names), device=squares.device)
            norms.index_add_(0, index, squares).sqrt_()
            scale = _loss_scale(model)
            if scale is not None:  # float16 loss scaling: the gradients are still scaled
                norms.div_(scale)
        self._latest = norms

    def read(self) -> dict[str, float] | None:
        """The latest norms by layer name (one device-to-host copy), then forgets them."""
        if self._latest is None:
            return None
        values = self._latest.tolist()
        self._latest = None
        return dict(zip(self.names, values))


def _loss_scale(model):
    step = getattr(model, "_step", None)
    scaler = getattr(step, "grad_scaler", None)
    if scaler is None:
        return None
    return scaler._get_scale_async()  # a device tensor: dividing by it costs no sync


# ------------------------------------------------------------------------------ summaries
def write_keras_model_summary(writer, model) -> bool:
    """Writes the model's config as Keras does (tag "keras", plugin "graph_keras_model"),
    which TensorBoard's graph dashboard draws as a conceptual graph."""
    from tensorboard.compat.proto import types_pb2
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

    try:
        config = model.to_json()
    except Exception as err:  # a model that cannot be serialized must not stop training
        warnings.warn(f"Model failed to serialize as JSON. Ignoring... {err}", stacklevel=3)
        return False
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
    )
    tensor = TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=TensorShapeProto(),
        string_val=[config.encode("utf-8")],
    )
    summary = Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
    writer._get_file_writer().add_summary(summary, global_step=0)
    return True


def example_inputs(model):
    """Zeros shaped like the model's inputs (batch 1), or None when they are unknown."""
    from distkeras import backend

    device = next((p.device for p in model.parameters()), backend.get_device())
    inputs = getattr(model, "inputs", None)
    if inputs:
        tensors = [
            torch.zeros(
                tuple(1 if d is None else d for d in t.shape),
                dtype=backend.standardize_dtype(t.dtype),
                device=device,
            )
            for t in inputs
        ]
        return tensors[0] if len(tensors) == 1 else tensors
    shape = getattr(model, "_build_shapes", None)
    if (
        isinstance(shape, (tuple, list))
        and shape
        and all(d is None or isinstance(d, int) for d in shape)
    ):
        return torch.zeros(tuple(1 if d is None else d for d in shape), device=device)
    return None


def write_op_graph(writer, model) -> str | None:
    """Traces the model on zeros and writes torch's op graph; returns why it failed, if so."""
    example = example_inputs(model)
    if example is None:
        return "the model's input shape is unknown"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter about Python control flow
            writer.add_graph(model, (example,) if isinstance(example, list) else example)
    except Exception as err:  # tracing is best effort: report and carry on
        return f"{type(err).__name__}: {err}"
    return None


def weight_image(value: np.ndarray) -> np.ndarray | None:
    """Keras's layout of a weight as NHWC images (None when it has no sensible picture)."""
    image = np.squeeze(value)
    shape = image.shape
    if image.ndim == 1:  # bias
        image = image.reshape(1, shape[0], 1, 1)
    elif image.ndim == 2:  # dense kernel, the long side horizontal
        if shape[0] > shape[1]:
            image = image.T
        image = image.reshape(1, image.shape[0], image.shape[1], 1)
    elif image.ndim == 3:  # 1D conv kernel (k, in, out): one image per output channel
        image = np.transpose(image, (2, 0, 1))
        image = image.reshape(*image.shape, 1)
    if image.ndim == 4 and image.shape[-1] in (1, 3, 4):
        return image
    return None


def read_metadata(filepath: str):
    """(rows, header) of an embedding metadata TSV file, as the projector reads it."""
    with open(filepath) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    if lines and "\t" in lines[0]:
        return [line.split("\t") for line in lines[1:]], lines[0].split("\t")
    return lines, None
