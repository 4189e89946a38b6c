"""``utils.model_to_dot`` and ``utils.plot_model``: the layer graph drawn with pydot/Graphviz.

One box per layer (its name, class, and on request its input/output shapes, dtype,
activation and trainable flag), one arrow per tensor passed between layers. Nested models are
one box, or with ``expand_nested`` a cluster of their own layers.
"""

from __future__ import annotations

import os
import shutil


def _pydot():
    try:
        import pydot
    except ImportError as err:
        raise ImportError(
            "You must install pydot (`pip install pydot`) for `plot_model` to work."
        ) from err
    return pydot


def _check_graphviz() -> None:
    if shutil.which("dot") is None:
        raise ImportError(
            "You must install graphviz for `plot_model` to work: its `dot` program was not "
            "found on PATH. On Debian/Ubuntu: `apt-get install graphviz`; on macOS: `brew "
            "install graphviz`; other systems: https://graphviz.org/download/"
        )


def _shape_text(tensors) -> str:
    shapes = [str(tuple(t.shape)) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _label(layer, options: dict) -> str:
    from distkeras import activations

    lines = [
        f"{layer.name} ({type(layer).__name__})"
        if options["show_layer_names"]
        else type(layer).__name__
    ]
    node = layer._inbound_nodes[0] if layer._inbound_nodes else None
    if options["show_shapes"] and node is not None:
        if node.input_tensors:
            lines.append(f"Input shape: {_shape_text(node.input_tensors)}")
        lines.append(f"Output shape: {_shape_text(node.output_tensors)}")
    if options["show_dtype"] and node is not None:
        lines.append(f"Output dtype: {node.output_tensors[0].dtype}")
    activation = getattr(layer, "activation", None)
    if options["show_layer_activations"] and callable(activation):
        lines.append(f"Activation: {activations.serialize(activation)}")
    if options["show_trainable"]:
        lines.append(f"Trainable: {'Yes' if layer.trainable else 'No'}")
    return "\n".join(lines)


def _layers_and_edges(model):
    """(layers, [(from_layer, to_layer), ...]) of a functional or Sequential model."""
    from distkeras.models.sequential import Sequential

    if isinstance(model, Sequential):
        layers = ([model._input_layer] if model._input_layer is not None else []) + model.layers
        return layers, list(zip(layers, layers[1:]))
    layers = list(model.layers)
    members = {id(layer) for layer in layers}
    edges = []
    for layer in layers:
        for node in layer._inbound_nodes:
            if node not in model._nodes:
                continue
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                if id(source) in members and (source, layer) not in edges:
                    edges.append((source, layer))
    return layers, edges


def _is_model(layer) -> bool:
    from distkeras.models.functional import Functional
    from distkeras.models.sequential import Sequential

    return isinstance(layer, (Functional, Sequential))


def _add_model(dot, pydot, model, options: dict, prefix: str = "") -> tuple[dict, dict]:
    """Adds ``model``'s boxes and arrows to ``dot``; returns each layer's (entry, exit) ids."""
    layers, edges = _layers_and_edges(model)
    entry, exit_ = {}, {}
    for layer in layers:
        key = f"{prefix}{id(layer)}"
        if options["expand_nested"] and _is_model(layer):
            cluster = pydot.Cluster(key, label=layer.name, style="dashed")
            inner_entry, inner_exit = _add_model(cluster, pydot, layer, options, prefix=key + "_")
            dot.add_subgraph(cluster)
            inner_layers, _ = _layers_and_edges(layer)
            entry[id(layer)] = inner_entry[id(inner_layers[0])]
            exit_[id(layer)] = inner_exit[id(inner_layers[-1])]
            continue
        dot.add_node(pydot.Node(key, label=_label(layer, options), shape="box"))
        entry[id(layer)] = exit_[id(layer)] = key
    for source, target in edges:
        dot.add_edge(pydot.Edge(exit_[id(source)], entry[id(target)]))
    return entry, exit_


def model_to_dot(
    model,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    subgraph: bool = False,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
    **kwargs,
):
    """The model's layer graph as a ``pydot.Dot`` (or ``pydot.Cluster`` with ``subgraph``)."""
    if kwargs:
        raise ValueError(f"model_to_dot: unrecognized keyword arguments: {sorted(kwargs)}")
    if not _is_model(model):
        raise ValueError(
            "model_to_dot and plot_model draw Sequential and functional models; a subclassed "
            f"model's graph is only known by running it. Received: {type(model).__name__}"
        )
    pydot = _pydot()
    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name, label=model.name)
    else:
        dot = pydot.Dot(graph_type="digraph")
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    options = dict(
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        expand_nested=expand_nested,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
    )
    _add_model(dot, pydot, model, options)
    return dot


def plot_model(
    model,
    to_file: str = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
    **kwargs,
):
    """Draws the model's graph into ``to_file`` (PNG, SVG, PDF, ... by its extension).

    Returns an ``IPython.display.Image`` of a PNG when IPython is available, as Keras does.
    """
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("plot_model: argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"plot_model: unrecognized keyword arguments: {sorted(kwargs)}")
    if not getattr(model, "built", True):
        raise ValueError(
            "This model has not yet been built. Build it first by calling `build()` or by "
            "calling the model on a batch of data."
        )
    _pydot()
    _check_graphviz()
    dot = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
        splines=splines,
    )
    to_file = str(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    dot.write(to_file, format=extension)
    if extension == "png":
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None
