"""A few training steps with one injected fault, for the fail-fast matrix: `... DIR FAULT [STEP]`.

Every rank writes DIR/pid<rank> at start. At step 2 of epoch 0, rank 1 (the last rank for
`stuck`) injects FAULT after noting the time in DIR/fault:

    raise    raises RuntimeError("injected failure on rank 1")
    kill     SIGKILLs itself
    exit3    calls sys.exit(3)
    exit0    calls sys.exit(0) in the middle of training
    term     (rank 0) writes DIR/ready and keeps training slowly until the test signals the job
    stuck    sleeps DISTKERAS_TIMEOUT + 6 s in the callback (the others wait in the all-reduce)
    gil      like stuck, in C code that holds the GIL (libc sleep through ctypes.PyDLL)
    extra    no fault in fit; afterwards rank 0 alone calls distributed.barrier() (DIR/fault is
             written just before), which rank 1, having ended, never joins
    KIND-evaluate, KIND-predict
             no fault in fit; afterwards rank 1 injects KIND (raise, kill, ...) at batch 1 of
             model.evaluate() or model.predict()

STEP "custom" trains a model with Dropout through its own train_step (the keras.io guide's);
there `raise` happens inside that step, after backward() has started the gradient all-reduce
and before optimizer.apply() waits for it, and `stuck` at the start of that step.
"""

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

import distkeras
from distkeras import distributed, layers

folder, fault = Path(sys.argv[1]), sys.argv[2]
custom = sys.argv[3:] == ["custom"]
kind, _, phase = fault.partition("-")  # "raise-evaluate": raise, in evaluate()
phase = phase or "fit"
rank = distributed.rank()
(folder / f"pid{rank}").write_text(str(os.getpid()))


def note(name: str) -> None:
    (folder / f"{name}.tmp").write_text(repr(time.time()))
    os.replace(folder / f"{name}.tmp", folder / name)


def inject() -> None:
    note("fault")
    if kind == "raise":
        raise RuntimeError("injected failure on rank 1")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "exit3":
        sys.exit(3)
    if kind == "exit0":
        sys.exit(0)
    if kind == "stuck":  # long enough for the others to time out and ask where it is
        time.sleep(float(os.environ["DISTKERAS_TIMEOUT"]) + 6)
    if kind == "gil":  # no Python thread of this process runs meanwhile
        end = time.monotonic() + float(os.environ["DISTKERAS_TIMEOUT"]) + 6
        while time.monotonic() < end:  # a signal cuts a sleep short: sleep again
            ctypes.PyDLL(None).sleep(max(1, int(end - time.monotonic())))


class Fault(distkeras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if fault == "term":
            if rank == 0 and batch == 2:
                note("ready")
            if batch >= 2:
                time.sleep(0.05)  # keep training until the signal arrives
            return
        if batch != 2 or rank != 1 or phase != "fit" or (custom and fault in IN_STEP):
            return
        inject()

    def on_test_batch_begin(self, batch, logs=None):
        if phase == "evaluate" and batch == 1 and rank == 1:
            inject()

    def on_predict_batch_begin(self, batch, logs=None):
        if phase == "predict" and batch == 1 and rank == 1:
            inject()


IN_STEP = ("raise", "stuck")  # where the custom step injects the fault itself


class GuideStep(distkeras.Sequential):
    steps = 0

    def train_step(self, data):
        if fault == "stuck" and rank == 1 and self.steps == 2:
            note("fault")
            time.sleep(float(os.environ["DISTKERAS_TIMEOUT"]) + 6)
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        self.steps += 1
        if fault == "raise" and rank == 1 and self.steps == 3:
            note("fault")
            raise RuntimeError("injected failure on rank 1")
        weights = self.trainable_weights
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in weights], weights)
        self.metrics[0].update_state(loss)
        return {m.name: m.result() for m in self.metrics}


distkeras.utils.set_random_seed(1)
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
if custom:
    model = GuideStep([distkeras.Input((4,)), layers.Dropout(0.2), layers.Dense(1)])
else:
    model = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
epochs = 400 if fault == "term" else 2
model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[Fault()])
if phase == "evaluate":
    model.evaluate(x, y, batch_size=8, verbose=0, callbacks=[Fault()])
if phase == "predict":
    model.predict(x, batch_size=8, verbose=0, callbacks=[Fault()])
if fault == "extra" and rank == 0:
    note("fault")
    distributed.barrier()
print(f"rank {rank} finished", flush=True)
