"""Callbacks, mirroring ``keras.callbacks``."""

from distkeras.callbacks.base import Callback, CallbackList
from distkeras.callbacks.checkpoint import BackupAndRestore, ModelCheckpoint
from distkeras.callbacks.csv_logger import CSVLogger
from distkeras.callbacks.early_stopping import EarlyStopping
from distkeras.callbacks.history import History
from distkeras.callbacks.lambda_callback import LambdaCallback
from distkeras.callbacks.lr import LearningRateScheduler, ReduceLROnPlateau
from distkeras.callbacks.progbar import ProgbarLogger
from distkeras.callbacks.tensorboard import TensorBoard
from distkeras.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
