"""Models whose own train_step the fault jobs and tests train (imported from this folder).

``GuideStep`` is the step of the keras.io guide "Customizing what happens in fit() with
PyTorch": it updates ``self.metrics`` (the loss tracker, then ``compile_metrics``, whose
states exist only after their first update).
"""

import torch

import distkeras


class GuideStep(distkeras.Sequential):
    """The keras.io guide's train_step on a Sequential model."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        weights = self.trainable_weights
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in weights], weights)
        for metric in self.metrics:
            metric.update_state(loss) if metric.name == "loss" else metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


class EveryOtherStep(GuideStep):
    """Trains on every other batch; on the others it only tracks the loss (no backward)."""

    calls = 0

    def train_step(self, data):
        self.calls += 1
        if self.calls % 2:
            return super().train_step(data)
        x, y = data
        with torch.no_grad():
            loss = self.compute_loss(y=y, y_pred=self(x, training=False))
        self.metrics[0].update_state(loss)
        return {m.name: m.result() for m in self.metrics}
