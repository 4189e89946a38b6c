"""Damaged model files: loading either gives the saved model back or a clear error.

A small model is saved as ``.keras`` and ``.weights.h5``; copies are truncated at several
offsets and have single bytes flipped across the file (the headers, the data, the directory
at the end). Each load must either succeed with predictions equal to the original's (the
damage hit bytes nobody reads) or raise a ``ValueError``/``OSError`` whose message names the
file: never a segfault, a hang, another exception type, or silently different weights.
Loads run in a child process with a timeout, so a crash or a hang in the HDF5 C library is
reported as a failure naming the damaged file instead of killing the test run.

Failed saves over an existing good file must leave that file loadable.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import distkeras
from distkeras import layers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Seconds for the whole sweep of one format (each load takes milliseconds).
SWEEP_TIMEOUT = 120


def make_model():
    inputs = distkeras.Input((6,))
    hidden = layers.Dense(5, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(3, activation="softmax", name="probs")(hidden)
    model = distkeras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    model.fit(x, y, epochs=1, verbose=0)  # optimizer state is saved too
    return model, x


# ----------------------------------------------------------------------- damage
def truncations(size: int) -> list[int]:
    points = {0, 1, 8, 30, 64, 200, 512, size // 4, size // 2, 3 * size // 4}
    points |= {size - 200, size - 22, size - 10, size - 1}
    return sorted(p for p in points if 0 <= p < size)


def flip_positions(size: int) -> list[int]:
    """Headers byte by byte, then an even sweep, then the trailing directory."""
    head = list(range(0, min(size, 96), 4))
    sweep = list(np.linspace(96, size - 1, 40).astype(int))
    tail = list(range(max(size - 96, 0), size, 6))
    return sorted(set(int(p) for p in head + sweep + tail if 0 <= p < size))


def h5_data_offsets(h5_bytes: bytes) -> list[int]:
    """File offsets in the middle of every layer weight's raw bytes.

    (Optimizer state is left out: a model loaded without compile never reads it.)
    """
    offsets = []

    def visit(name, item):
        if not isinstance(item, h5py.Dataset) or item.ndim == 0 or item.size == 0:
            return
        if name.startswith("optimizer"):
            return
        if item.chunks is None:
            offsets.append(item.id.get_offset() + item.nbytes // 2)
        else:
            for i in range(item.id.get_num_chunks()):
                info = item.id.get_chunk_info(i)
                offsets.append(info.byte_offset + info.size // 2)

    with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
        h5.visititems(visit)
    return offsets


def weights_data_offsets(original: bytes, suffix: str) -> list[int]:
    if suffix == ".weights.h5":
        return h5_data_offsets(original)
    with zipfile.ZipFile(io.BytesIO(original)) as zf:
        info = zf.getinfo("model.weights.h5")
        inner = zf.read("model.weights.h5")
    # The entry's bytes follow its local header (30 bytes, the name, the extra field).
    name_len, extra_len = struct.unpack(
        "<HH", original[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    return [start + offset for offset in h5_data_offsets(inner)]


def write_damaged(original: bytes, directory, suffix: str) -> list[tuple[str, str]]:
    """(description, path) of every damaged copy."""
    cases = []
    os.makedirs(directory, exist_ok=True)
    # Bytes of the weights themselves: damage there must never load silently.
    for position in weights_data_offsets(original, suffix):
        damaged = bytearray(original)
        damaged[position] ^= 0x40
        path = os.path.join(directory, f"data_{position}{suffix}")
        with open(path, "wb") as f:
            f.write(bytes(damaged))
        cases.append((f"weight byte {position} flipped", path))
    for offset in truncations(len(original)):
        path = os.path.join(directory, f"trunc_{offset}{suffix}")
        with open(path, "wb") as f:
            f.write(original[:offset])
        cases.append((f"truncated to {offset} bytes", path))
    for position in flip_positions(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0xFF
        path = os.path.join(directory, f"flip_{position}{suffix}")
        with open(path, "wb") as f:
            f.write(bytes(damaged))
        cases.append((f"byte {position} flipped", path))
    # Runs of zeroed bytes (a torn write or a bad sector), at seeded random places.
    rng = np.random.default_rng(len(original))
    for start in sorted(rng.integers(0, len(original) - 16, size=12).tolist()):
        damaged = bytearray(original)
        damaged[start : start + 16] = bytes(16)
        path = os.path.join(directory, f"zeros_{start}{suffix}")
        with open(path, "wb") as f:
            f.write(bytes(damaged))
        cases.append((f"16 bytes zeroed at {start}", path))
    return cases


# ------------------------------------------------------------------ child process
def _worker(spec_path: str) -> None:
    """Runs in the child: loads every damaged file and prints one JSON line per file."""
    import warnings

    import torch

    torch.set_num_threads(1)
    with open(spec_path) as f:
        spec = json.load(f)
    x = np.load(spec["x"])
    expected = np.load(spec["expected"])
    template = None
    if spec["kind"] == "weights":
        template = distkeras.models.model_from_json(spec["architecture"])
    for path in spec["paths"]:
        print(json.dumps({"start": path}), flush=True)
        record = {"path": path}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. a skipped optimizer state
                if spec["kind"] == "keras":
                    model = distkeras.models.load_model(path)
                else:
                    model = template
                    model.load_weights(path)
            got = model.predict(x, verbose=0)
            record["result"] = "equal" if np.array_equal(got, expected) else "different"
        except Exception as err:  # noqa: BLE001 - the parent judges the type
            record["result"] = "error"
            record["type"] = type(err).__name__
            record["is_value_or_os_error"] = isinstance(err, (ValueError, OSError))
            record["message"] = str(err)[:500]
        if template is not None:  # undo a partial load before the next file
            template.set_weights([np.load(w) for w in spec["weights"]])
        print(json.dumps(record), flush=True)


def run_sweep(kind: str, original_path: str, model, x, tmp_path) -> list[dict]:
    with open(original_path, "rb") as f:
        original = f.read()
    suffix = ".keras" if kind == "keras" else ".weights.h5"
    cases = write_damaged(original, tmp_path / "damaged", suffix)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    weight_files = []
    for i, w in enumerate(model.get_weights()):
        np.save(tmp_path / f"w{i}.npy", w)
        weight_files.append(str(tmp_path / f"w{i}.npy"))
    spec = {
        "kind": kind,
        "paths": [path for _, path in cases],
        "x": str(tmp_path / "x.npy"),
        "expected": str(tmp_path / "expected.npy"),
        "architecture": model.to_json(),
        "weights": weight_files,
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from tests.robustness.test_model_file_corruption import _worker; _worker(sys.argv[2])"
    )
    env = dict(os.environ, DISTKERAS_DEVICE="cpu", PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, REPO, str(spec_path)],
            capture_output=True,
            text=True,
            timeout=SWEEP_TIMEOUT,
            env=env,
            cwd=REPO,
        )
        stdout, returncode, stderr = proc.stdout, proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        returncode, stderr = "timeout", ""
    records, started = {}, None
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if "start" in item:
            started = item["start"]
        else:
            records[item["path"]] = item
    if returncode != 0:
        describe = dict((p, d) for d, p in cases).get(started, started)
        pytest.fail(
            f"loading a damaged {kind} file ({describe}: {started}) ended the process "
            f"({returncode}); stderr tail:\n{stderr[-2000:]}"
        )
    results = []
    for description, path in cases:
        record = records[path]
        record["description"] = description
        results.append(record)
    return results


def check_results(results: list[dict]) -> None:
    problems = []
    for record in results:
        name = os.path.basename(record["path"])
        if record["result"] == "different":
            problems.append(f"{record['description']}: loaded silently with different outputs")
        elif record["result"] == "error":
            if not record["is_value_or_os_error"]:
                problems.append(
                    f"{record['description']}: {record['type']} escaped: {record['message']}"
                )
            elif name not in record["message"]:
                problems.append(
                    f"{record['description']}: the error does not name the file: "
                    f"{record['type']}: {record['message']}"
                )
    assert not problems, "\n".join(problems)
    # A truncated file is never the whole model; and the sweep must hit bytes that matter
    # (most of an HDF5 file is reserved space, so many flips rightly change nothing).
    for record in results:
        if record["description"].startswith(("truncated", "weight byte")):
            assert record["result"] == "error", record["description"]
    errors = sum(r["result"] == "error" for r in results)
    assert errors >= len(results) // 5, f"only {errors} of {len(results)} damaged files failed"


# ------------------------------------------------------------------------ tests
def test_damaged_keras_archives_load_or_fail_clearly(tmp_path):
    model, x = make_model()
    path = tmp_path / "model.keras"
    model.save(path)
    check_results(run_sweep("keras", str(path), model, x, tmp_path))


def test_damaged_weights_files_load_or_fail_clearly(tmp_path):
    model, x = make_model()
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    check_results(run_sweep("weights", str(path), model, x, tmp_path))


def test_damaged_entries_inside_a_keras_archive(tmp_path):
    """A valid zip whose config/weights entries are themselves broken."""
    model, x = make_model()
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    broken = {
        "config_not_json": {"config.json": b"{not json"},
        "config_wrong_type": {"config.json": b"[1, 2, 3]"},
        "config_unknown_class": {"config.json": b'{"class_name": "NoSuchLayer", "config": {}}'},
        "weights_not_h5": {"model.weights.h5": b"\x00" * 64},
        "weights_truncated": {"model.weights.h5": entries["model.weights.h5"][:300]},
        "weights_missing": {"model.weights.h5": None},
    }
    for label, changes in broken.items():
        target = tmp_path / f"{label}.keras"
        with zipfile.ZipFile(target, "w") as zf:
            for name, data in entries.items():
                data = changes.get(name, data)
                if data is not None:
                    zf.writestr(name, data)
        with pytest.raises((ValueError, OSError)) as info:
            distkeras.models.load_model(target)
        assert f"{label}.keras" in str(info.value), (label, str(info.value))


def _assert_still_good(path, model, x):
    restored = distkeras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert sorted(os.listdir(os.path.dirname(path))) == [os.path.basename(path)]


@pytest.mark.parametrize("where", ["fsync", "replace", "serialize"])
def test_failed_save_over_a_good_file_keeps_it(tmp_path, monkeypatch, where):
    model, x = make_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    before = Path(path).read_bytes()
    other, _ = make_model()
    other.set_weights([w + 1.0 for w in other.get_weights()])

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", fail)  # after the bytes went to the temporary file
    elif where == "replace":
        monkeypatch.setattr(os, "replace", fail)  # at the very last step
    else:
        other.get_layer("hidden").get_config = lambda: {"bad": object()}
    with pytest.raises((OSError, TypeError)):
        other.save(path)
    monkeypatch.undo()
    assert Path(path).read_bytes() == before
    _assert_still_good(path, model, x)


def test_interrupted_save_keeps_the_good_file(tmp_path, monkeypatch):
    """A KeyboardInterrupt (Ctrl-C) in the middle of writing leaves no half-written file."""
    model, x = make_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    real_fdopen = os.fdopen

    class Interrupting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            return False

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Interrupting(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    _assert_still_good(path, model, x)
