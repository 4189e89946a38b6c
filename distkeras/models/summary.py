"""``model.summary()``: Keras 3's table, drawn in plain text.

Keras renders the table with ``rich``; this module reproduces the same characters without it:
the same column widths (rich's reduction of the requested widths to the line length), word
wrapping, "…" for words that do not fit, box-drawing borders, and the parameter totals with
their memory size. Functional models whose graph is not a plain chain get a ``Connected to``
column; layers never built show ``?`` and ``0 (unbuilt)``.
"""

from __future__ import annotations

import math
import re
import shutil
import sys

from distkeras.utils.tree import flatten


# ---------------------------------------------------------------------------- numbers
def count_params(weights) -> int:
    return int(sum(math.prod(tuple(w.shape)) for w in weights))


def weight_memory_size(weights) -> int:
    """Bytes taken by the distinct tensors in ``weights``."""
    unique = {id(w): w for w in weights}.values()
    return int(sum(math.prod(tuple(w.shape)) * _itemsize(w) for w in unique))


def _itemsize(tensor) -> int:
    size = getattr(tensor, "element_size", None)
    if callable(size):
        return int(size())
    return int(getattr(getattr(tensor, "dtype", None), "itemsize", 4))


def readable_memory_size(size: float) -> str:
    """``1234`` -> ``"1.21 KB"``, as Keras prints sizes."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


# ----------------------------------------------------------------------------- shapes
def _format_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _map_shapes(fn, value):
    if _is_shape(value):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_shapes(fn, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_shapes(fn, v) for v in value)
    return str(value)


def _format_layer_shape(layer) -> str:
    if layer._inbound_nodes:
        outputs = layer._inbound_nodes[-1].outputs
        shapes = _map_tensors(lambda t: _format_shape(t.shape), outputs)
    elif layer._build_shapes is not None:
        try:
            shapes = _map_shapes(_format_shape, layer.compute_output_shape(layer._build_shapes))
        except Exception:  # a layer that cannot tell its output shape: Keras prints "?"
            return "?"
    else:
        return "?"
    flat = flatten(shapes)
    if len(flat) == 1:
        return flat[0]
    return str(shapes).replace("'", "")


def _map_tensors(fn, value):
    if isinstance(value, dict):
        return {k: _map_tensors(fn, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(fn, v) for v in value)
    return fn(value) if hasattr(value, "shape") else str(value)


# ------------------------------------------------------------------------------ table
def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]):
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result = []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _ratio_distribute(total: int, ratios: list[int]) -> list[int]:
    total_ratio = sum(ratios)
    remaining = total
    result = []
    for ratio in ratios:
        share = math.ceil(ratio * remaining / total_ratio) if total_ratio > 0 else remaining
        result.append(share)
        total_ratio -= ratio
        remaining -= share
    return result


def _cell_widths(requested: list[int], line_length: int) -> list[int]:
    """Widths of the cells (padding included), as rich sizes a table of ``line_length``."""
    available = line_length - (len(requested) + 1)  # the vertical borders
    widths = [min(w + 2, available) for w in requested]
    total = sum(widths)
    if total > available:
        widths = _ratio_reduce(total - available, [1] * len(widths), widths, widths)
    elif total < available:
        extra = _ratio_distribute(available - total, widths)
        widths = [w + e for w, e in zip(widths, extra)]
    return widths


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap; a word wider than the cell is cut with an ellipsis."""
    lines = []
    for paragraph in text.split("\n"):
        current, offset = "", 0
        for word in re.findall(r"\s*\S+\s*", paragraph):
            if width - offset >= len(word.rstrip()):
                current += word
                offset += len(word)
            else:
                if current:
                    lines.append(current)
                current, offset = word, len(word)
        lines.append(current)
    out = []
    for line in lines:
        line = line.rstrip()
        if len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        out.append(line)
    return out


def _justify(line: str, width: int, align: str) -> str:
    space = width - len(line)
    if align == "right":
        return " " * space + line
    if align == "center":
        return " " * (space // 2) + line + " " * (space - space // 2)
    return line + " " * space


def _render_row(
    cells: list[str], widths: list[int], aligns: list[str], edge: str, bottom: bool = False
) -> list[str]:
    wrapped = [_wrap(text, w - 2) for text, w in zip(cells, widths)]
    height = max(len(lines) for lines in wrapped)
    if bottom:  # header cells sit on the header's last line
        wrapped = [[""] * (height - len(lines)) + lines for lines in wrapped]
    rendered = []
    for i in range(height):
        parts = []
        for lines, w, align in zip(wrapped, widths, aligns):
            text = lines[i] if i < len(lines) else ""
            parts.append(" " + _justify(text, w - 2, align) + " ")
        rendered.append(edge + edge.join(parts) + edge)
    return rendered


def render_table(header: list[str], aligns: list[str], rows, widths: list[int]) -> list[str]:
    """The lines of a rich-style table (heavy header box, a rule between rows)."""
    lines = ["┏" + "┳".join("━" * w for w in widths) + "┓"]
    lines += _render_row(header, widths, aligns, "┃", bottom=True)
    lines.append("┡" + "╇".join("━" * w for w in widths) + "┩")
    separator = "├" + "┼".join("─" * w for w in widths) + "┤"
    for i, row in enumerate(rows):
        if i:
            lines.append(separator)
        lines += _render_row(row, widths, aligns, "│")
    lines.append("└" + "┴".join("─" * w for w in widths) + "┘")
    return lines


# ---------------------------------------------------------------------------- summary
def _sequential_like(model) -> bool:
    """Whether a functional graph is a plain chain (then Keras omits ``Connected to``)."""
    nodes = []
    for depth_nodes in model._nodes_by_depth.values():
        if len(depth_nodes) > 1 or (depth_nodes and len(depth_nodes[0].input_tensors) > 1):
            return False
        nodes += depth_nodes
    node_ids = {id(n) for n in nodes}
    for layer in model._graph_layers:
        if sum(id(node) in node_ids for node in layer._inbound_nodes) > 1:
            return False
    return True


def layer_index_bounds(layers, layer_range=None) -> list[int]:
    """``[first, last + 1]`` of the layers whose names match ``layer_range``'s two regexes."""
    if layer_range is None:
        return [0, len(layers)]
    if len(layer_range) != 2 or not all(isinstance(p, str) for p in layer_range):
        raise ValueError(
            f"layer_range must be a list or tuple of 2 strings. Received: {layer_range}"
        )
    lower = [i for i, layer in enumerate(layers) if re.match(layer_range[0], layer.name)]
    upper = [i for i, layer in enumerate(layers) if re.match(layer_range[1], layer.name)]
    if not lower or not upper:
        raise ValueError(
            f"Passed layer_names do not match the layer names in the model. Received: {layer_range}"
        )
    if min(lower) > max(upper):
        return [min(upper), max(lower) + 1]
    return [min(lower), max(upper) + 1]


def print_summary(
    model,
    line_length: int | None = None,
    positions=None,
    print_fn=None,
    expand_nested: bool = False,
    show_trainable: bool = False,
    layer_range=None,
) -> None:
    """Prints Keras 3's summary table of ``model`` (or passes it to ``print_fn`` as one string).

    Example:
        >>> model.summary(print_fn=lambda text: lines.extend(text.splitlines()))
    """
    from distkeras.models.functional import Functional

    # Keras's table lists op nodes (x + y: "add (Add)") too, though model.layers does not.
    layers = list(model._graph_layers) if isinstance(model, Functional) else model.layers
    sequential_like = not isinstance(model, Functional) or _sequential_like(model)
    relevant_nodes: set[int] = set()
    if sequential_like:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header, aligns = ["Layer (type)", "Output Shape", "Param #"], ["left", "left", "right"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        aligns = ["left", "left", "right", "left"]
        relevant_nodes = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    positions = list(positions or default_positions)
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        aligns.append("center")
    columns = shutil.get_terminal_size().columns
    default_length = min(default_length, columns - 4)
    line_length = line_length or default_length
    if positions[-1] <= 1:
        positions = [int(p * line_length) for p in positions]
    requested, current = [], 0
    for position in positions:
        width = int(position) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        requested.append(width)
        current += width

    def connections(layer) -> str:
        parts = []
        for node in layer._inbound_nodes:
            if relevant_nodes and id(node) not in relevant_nodes:
                continue
            for tensor in node.input_tensors:
                inbound, node_index, tensor_index = tensor._keras_history
                parts.append(f"{inbound.name}[{node_index}][{tensor_index}]")
        return ", ".join(parts) or "-"

    def fields(layer, prefix: str) -> list[str]:
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        kind = getattr(layer, "keras_class", None) or type(layer).__name__  # op nodes: Keras's
        row = [f"{prefix}{layer.name} ({kind})", _format_layer_shape(layer), params]
        if not sequential_like:
            row.append(connections(layer))
        if show_trainable:
            row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        return row

    def rows_for(layer, level: int = 0) -> list[list[str]]:
        prefix = "   " * level + "└ " if level else ""
        rows = [fields(layer, prefix)]
        nested = getattr(layer, "layers", None) if expand_nested else None
        for sublayer in nested or []:
            rows.extend(rows_for(sublayer, level + 1))
        return rows

    start, stop = layer_index_bounds(layers, layer_range)
    rows = [row for layer in layers[start:stop] for row in rows_for(layer)]
    widths = _cell_widths(requested, line_length)
    # Keras's console crops a table wider than the terminal; so do we, for identical output.
    table = [line[:columns] for line in render_table(header, aligns, rows, widths)]
    lines = [f'Model: "{model.name}"', *table]

    trainable, non_trainable = model.trainable_weights, model.non_trainable_weights
    optimizer = getattr(model, "optimizer", None)
    optimizer_vars = None
    if getattr(model, "compiled", False) and getattr(optimizer, "built", False):
        optimizer_vars = list(getattr(optimizer, "variables", []) or [])
    totals = [
        ("Trainable params", count_params(trainable), weight_memory_size(trainable)),
        ("Non-trainable params", count_params(non_trainable), weight_memory_size(non_trainable)),
    ]
    if optimizer_vars is not None:
        totals.append(
            (
                "Optimizer params",
                count_params(optimizer_vars),
                weight_memory_size(optimizer_vars),
            )
        )
    total_count = sum(t[1] for t in totals)
    total_size = sum(t[2] for t in totals)
    totals.insert(0, ("Total params", total_count, total_size))
    for label, count, size in totals:
        lines.append(f" {label}: {count:,} ({readable_memory_size(size)})")
    text = "\n".join(lines) + "\n"
    if print_fn is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        print_fn(text)
