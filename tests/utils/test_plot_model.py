"""plot_model / model_to_dot: every layer a box, every tensor between layers an arrow, files
Graphviz really renders, and clear errors when pydot or Graphviz is missing."""

from __future__ import annotations

import pytest

import distkeras
from distkeras import layers, utils


def _functional():
    a = distkeras.Input((4,), name="a")
    b = distkeras.Input((4,), name="b")
    hidden = layers.Dense(3, activation="relu", name="hidden")(a)
    merged = layers.Concatenate(name="merge")([hidden, b])
    inner = distkeras.Sequential(
        [distkeras.Input((7,), name="inner_input"), layers.Dense(2, name="inner_dense")],
        name="inner",
    )
    return distkeras.Model([a, b], inner(merged), name="outer")


def _edges(dot):
    names = {node.get_name(): node.get("label") for node in dot.get_nodes()}
    for cluster in dot.get_subgraphs():
        names.update({node.get_name(): node.get("label") for node in cluster.get_nodes()})
    first_line = {
        k: str(v).strip('"').split("\\n")[0].split("\n")[0].split(" ")[0] for k, v in names.items()
    }
    edges = list(dot.get_edges())
    for cluster in dot.get_subgraphs():
        edges += cluster.get_edges()
    return {(first_line[e.get_source()], first_line[e.get_destination()]) for e in edges}


def test_boxes_and_arrows_follow_the_graph():
    dot = utils.model_to_dot(_functional(), show_shapes=True, show_layer_activations=True)
    assert _edges(dot) == {("a", "hidden"), ("hidden", "merge"), ("b", "merge"), ("merge", "inner")}
    labels = " ".join(str(n.get("label")) for n in dot.get_nodes())
    assert "Output shape: (None, 7)" in labels and "Activation: relu" in labels


def test_expand_nested_draws_the_inner_layers():
    dot = utils.model_to_dot(_functional(), expand_nested=True)
    assert _edges(dot) == {
        ("a", "hidden"), ("hidden", "merge"), ("b", "merge"),
        ("merge", "inner_input"), ("inner_input", "inner_dense"),
    }  # fmt: skip
    assert any(
        "inner_dense" in str(n.get("label")) for c in dot.get_subgraphs() for n in c.get_nodes()
    )


@pytest.mark.parametrize("extension", ["png", "svg"])
def test_plot_model_writes_a_rendered_file(tmp_path, extension):
    path = tmp_path / f"model.{extension}"
    utils.plot_model(_functional(), to_file=str(path), show_shapes=True, show_dtype=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if extension == "png" else b"<svg" in data


def test_missing_graphviz_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImportError, match="apt-get install graphviz"):
        utils.plot_model(_functional(), to_file=str(tmp_path / "m.png"))


def test_unknown_arguments_and_subclassed_models_are_refused():
    with pytest.raises(ValueError, match="layer_range"):
        utils.plot_model(_functional(), layer_range=["a", "b"])
    with pytest.raises(ValueError, match="subclassed"):
        utils.model_to_dot(layers.Dense(2))
