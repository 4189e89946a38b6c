"""``CSVLogger``: one CSV row per epoch with the epoch logs (rank 0 writes)."""

from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np

from distkeras.callbacks.base import Callback


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Streams epoch results to a CSV file, as Keras's.

    The columns are ``epoch`` (from 0) and the sorted keys of the first epoch's logs; when
    those hold no validation values, ``val_`` columns are added and filled with "NA". Only
    rank 0 writes.

    Args:
        filename: path of the CSV file, e.g. "run/log.csv".
        separator: string separating the cells.
        append: append to an existing file (e.g. when resuming), writing no second header;
            otherwise overwrite it.

    Example:
        >>> model.fit(x, y, callbacks=[distkeras.callbacks.CSVLogger("training.log")])
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def _chief(self) -> bool:
        from distkeras import distributed

        return distributed.is_chief()

    def on_train_begin(self, logs=None):
        self.keys = None
        self.writer = None
        if not self._chief():
            return
        mode = "w"
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        directory = os.path.dirname(self.filename)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.csv_file = open(self.filename, mode, newline="")  # noqa: SIM115 (kept open)

    def on_epoch_end(self, epoch, logs=None):
        if self.csv_file is None or self.csv_file.closed:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += ["val_" + k for k in self.keys]
        if self.writer is None:

            class _Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch", *self.keys], dialect=_Dialect
            )
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None

    def get_config(self) -> dict:
        return {"filename": self.filename, "separator": self.sep, "append": self.append}
