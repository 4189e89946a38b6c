"""Audio preprocessing: ``MelSpectrogram`` and ``STFTSpectrogram`` (Keras 3.15's layers).

``MelSpectrogram`` is ``ops.stft`` (centred frames), the magnitude raised to ``mag_exp``, an HTK
mel filterbank and optionally decibels; it has no weights. ``STFTSpectrogram`` computes the
STFT as two strided 1D convolutions whose kernels are Keras's ``real_kernel``/``imag_kernel``
``(frame_length, 1, fft_length // 2 + 1)`` (cosine/sine times the window, scaled), which are
trainable weights as in Keras.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from distkeras import backend, initializers
from distkeras.layers.base import Layer
from distkeras.layers.conv_base import standardize_data_format
from distkeras.layers.input_spec import InputSpec
from distkeras.ops.math import stft

__all__ = ["MelSpectrogram", "STFTSpectrogram"]

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0
_TORCH_WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
    "bartlett": torch.bartlett_window,
}


def _window(window, length: int, periodic: bool) -> torch.Tensor:
    """scipy.signal.get_window(window, length, fftbins=periodic), as Keras uses it."""
    if isinstance(window, str):
        make = _TORCH_WINDOWS.get(window)
        if make is not None:
            return make(length, periodic=periodic, dtype=torch.float64)
        try:
            import scipy.signal
        except ImportError as err:
            raise ValueError(
                f"Window {window!r} needs scipy (pip install scipy); without it the windows are "
                f"{sorted(_TORCH_WINDOWS)}."
            ) from err
        return torch.as_tensor(scipy.signal.get_window(window, length, periodic))
    return torch.as_tensor(window, dtype=torch.float64)


def _check_window(window) -> None:
    if isinstance(window, str):
        _window(window, 1, False)  # an unknown name fails here, when the layer is made


class _STFTKernel(initializers.Initializer):
    """Keras's ``initializers.STFT``: DFT rows times the window, scaled."""

    def __init__(self, side: str, window, scaling, periodic: bool):
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape, dtype=None):
        dtype = backend.standardize_dtype(dtype)
        frame_length, _, bins = shape
        fft_length = (bins - 1) * 2
        freq = torch.arange(bins, dtype=dtype).reshape(1, 1, bins) / fft_length
        time = torch.arange(frame_length, dtype=dtype).reshape(frame_length, 1, 1)
        args = -2 * time * freq * math.pi
        kernel = torch.cos(args) if self.side == "real" else torch.sin(args)
        if self.window is not None:
            win = _window(self.window, frame_length, self.periodic).to(dtype)
            if win.ndim != 1 or win.shape[-1] != frame_length:
                raise ValueError(
                    "The shape of `window` must be equal to [frame_length]."
                    f"Received: window shape={tuple(win.shape)}"
                )
            win = win.reshape(frame_length, 1, 1)
            scale = 1.0
            if self.scaling == "density":
                scale = torch.sqrt(torch.sum(win * win))
            elif self.scaling == "spectrum":
                scale = torch.sum(win.abs())
            kernel = kernel * win / scale
        return kernel

    def get_config(self):
        return {
            "side": self.side,
            "window": self.window,
            "scaling": self.scaling,
            "periodic": self.periodic,
        }


def _kernel_to_torch(kernel: torch.Tensor) -> torch.Tensor:
    return kernel.permute(2, 1, 0)  # (k, 1, bins) -> (bins, 1, k)


def _kernel_to_keras(stored: torch.Tensor) -> torch.Tensor:
    return stored.permute(2, 1, 0)


class STFTSpectrogram(Layer):
    """The STFT of ``(batch, time, channels)`` signals as convolutions with DFT kernels.

    Args:
        mode: "log" (default), "magnitude", "psd", "real", "imag", "angle" or "stft".
        frame_length: window length in samples.
        frame_step: hop in samples (default ``frame_length // 2``).
        fft_length: FFT size (default the next power of two of ``frame_length``).
        window: a window name (as scipy's ``get_window``), an array, or None.
        periodic: periodic (True) or symmetric window.
        scaling: "density", "spectrum" or None.
        padding: "valid" or "same".
        expand_dims: keep channels on their own axis instead of stacking them with
            frequencies.
        data_format: "channels_last" (default) or "channels_first".

    Example:
        >>> layer = STFTSpectrogram(frame_length=64)
        >>> layer(torch.randn(2, 1000, 1)).shape
        torch.Size([2, 30, 33])
    """

    _MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")

    def __init__(
        self,
        mode: str = "log",
        frame_length: int = 256,
        frame_step: int | None = None,
        fft_length: int | None = None,
        window="hann",
        periodic: bool = False,
        scaling: str | None = "density",
        padding: str = "valid",
        expand_dims: bool = False,
        data_format=None,
        **kwargs,
    ):
        if frame_step is not None and (frame_step > frame_length or frame_step < 1):
            raise ValueError(
                "`frame_step` should be a positive integer not greater than `frame_length`. "
                f"Received frame_step={frame_step}, frame_length={frame_length}"
            )
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(
                "`fft_length` should be not less than `frame_length`. "
                f"Received fft_length={fft_length}, frame_length={frame_length}"
            )
        if fft_length is not None and (fft_length & -fft_length) != fft_length:
            warnings.warn(
                f"`fft_length` is recommended to be a power of two. Received fft_length="
                f"{fft_length}",
                stacklevel=2,
            )
        if mode not in self._MODES:
            raise ValueError(
                f"Output mode is invalid, it must be one of {', '.join(self._MODES)}. "
                f"Received: mode={mode}"
            )
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(
                "Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                f"Received scaling={scaling}"
            )
        if padding not in ("valid", "same"):
            raise ValueError(
                f"Padding is invalid, it should be 'valid', 'same'. Received: padding={padding}"
            )
        _check_window(window)
        super().__init__(**kwargs)
        self.mode = mode
        self.frame_length = frame_length
        self.frame_step = frame_step
        self._frame_step = frame_step or frame_length // 2
        self.fft_length = fft_length
        self._fft_length = fft_length or 2 ** int(math.ceil(math.log2(frame_length)))
        self.window = window
        self.periodic = periodic
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = expand_dims
        self.data_format = standardize_data_format("STFTSpectrogram", data_format)
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        for side in ("real", "imag"):
            if self.mode == ("imag" if side == "real" else "real"):
                continue
            weight = self.add_weight(
                shape=shape,
                initializer=_STFTKernel(side, self.window, self.scaling, self.periodic),
                name=f"{side}_kernel",
                to_storage=_kernel_to_torch,
                to_keras=_kernel_to_keras,
            )
            setattr(self, f"_{side}", weight)

    def _apply_conv(self, inputs: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """(batch, channels, bins, frames) of one STFT part."""
        if self.data_format == "channels_last":
            inputs = inputs.transpose(1, 2)
        batch, channels, time = inputs.shape
        x = inputs.reshape(batch * channels, 1, time)
        if self.padding == "same":
            out_len = -(-time // self._frame_step)
            total = max((out_len - 1) * self._frame_step + self.frame_length - time, 0)
            x = F.pad(x, (total // 2, total - total // 2))
        out = F.conv1d(x, kernel.to(x.dtype), stride=self._frame_step)
        return out.reshape(batch, channels, out.shape[1], out.shape[2])

    def _adjust_shapes(self, outputs: torch.Tensor) -> torch.Tensor:
        batch, channels, bins, frames = outputs.shape
        if self.data_format == "channels_last":
            if self.expand_dims:
                return outputs.permute(0, 3, 2, 1)
            return outputs.reshape(batch, channels * bins, frames).transpose(1, 2)
        if self.expand_dims:
            return outputs.permute(0, 1, 3, 2)
        return outputs.reshape(batch, channels * bins, frames)

    def call(self, inputs):
        if inputs.dtype not in (torch.float16, torch.float32, torch.float64):
            raise TypeError(
                "Invalid input type. Expected `float16`, `float32` or `float64`. "
                f"Received: input type={backend.dtype_name(inputs.dtype)}"
            )
        real = self._apply_conv(inputs, self._real) if self.mode != "imag" else None
        imag = self._apply_conv(inputs, self._imag) if self.mode != "real" else None
        if self.mode == "real":
            return self._adjust_shapes(real)
        if self.mode == "imag":
            return self._adjust_shapes(imag)
        if self.mode == "angle":
            return self._adjust_shapes(torch.atan2(imag, real))
        if self.mode == "stft":
            return self._adjust_shapes(torch.cat([real, imag], dim=2))
        power = real * real + imag * imag
        if self.mode == "psd":
            return self._adjust_shapes(power + F.pad(power[:, :, 1:-1, :], (0, 0, 1, 1)))
        eps = backend.epsilon()
        linear = self._adjust_shapes(torch.sqrt(torch.clamp(power, min=eps)))
        if self.mode == "magnitude":
            return linear
        return torch.log(torch.clamp(linear, min=eps))

    def compute_output_shape(self, input_shape):
        channels_last = self.data_format == "channels_last"
        batch = input_shape[0]
        channels = input_shape[-1] if channels_last else input_shape[1]
        time = input_shape[1] if channels_last else input_shape[2]
        bins = self._fft_length // 2 + 1
        if self.mode == "stft":
            bins *= 2
        if time is None:
            frames = None
        elif self.padding == "same":
            frames = -(-time // self._frame_step)
        else:
            frames = (time - self.frame_length) // self._frame_step + 1
        if self.expand_dims:
            return (
                (batch, frames, bins, channels)
                if channels_last
                else (batch, channels, frames, bins)
            )
        features = None if channels is None else bins * channels
        return (batch, frames, features) if channels_last else (batch, features, frames)

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            window=self.window,
            periodic=self.periodic,
            scaling=self.scaling,
            padding=self.padding,
            data_format=self.data_format,
            expand_dims=self.expand_dims,
        )
        return config


class MelSpectrogram(Layer):
    """Mel spectrograms of ``(time,)`` or ``(batch, time)`` signals: ``(..., num_mel_bins,
    frames)``.

    Args:
        fft_length: FFT size.
        sequence_stride: hop between frames.
        sequence_length: window length (default ``fft_length``).
        window: "hann", "hamming" or None.
        sampling_rate: samples per second.
        num_mel_bins: mel bands.
        min_freq, max_freq: band edges in Hz (``max_freq`` defaults to half the rate).
        power_to_db: convert to decibels, clipped ``top_db`` below the maximum.
        top_db, mag_exp, min_power, ref_power: as in Keras.

    Example:
        >>> MelSpectrogram(num_mel_bins=64)(torch.randn(2, 16000)).shape
        torch.Size([2, 64, 32])
    """

    def __init__(
        self,
        fft_length: int = 2048,
        sequence_stride: int = 512,
        sequence_length: int | None = None,
        window="hann",
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        min_freq: float = 20.0,
        max_freq: float | None = None,
        power_to_db: bool = True,
        top_db: float = 80.0,
        mag_exp: float = 2.0,
        min_power: float = 1e-10,
        ref_power: float = 1.0,
        **kwargs,
    ):
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError(
                "`fft_length` must be greater than or equal to `sequence_length`. Received: "
                f"`sequence_length`={self.sequence_length}, `fft_length`={self.fft_length}."
            )
        super().__init__(**kwargs)
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = power_to_db
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power

    def call(self, inputs):
        if not isinstance(inputs, torch.Tensor):
            inputs = torch.as_tensor(inputs)
        compute = backend.standardize_dtype(self.dtype)
        # The stft runs in float32 or float64 only, as in Keras.
        dtype = compute if compute in (torch.float32, torch.float64) else torch.float32
        real, imag = stft(
            inputs.to(dtype),
            sequence_length=self.sequence_length,
            sequence_stride=self.sequence_stride,
            fft_length=self.fft_length,
            window=self.window,
            center=True,
        )
        spec = torch.pow(torch.sqrt(real * real + imag * imag), self.mag_exp)
        matrix = self.linear_to_mel_weight_matrix(
            self.num_mel_bins, spec.shape[-1], self.sampling_rate, self.min_freq, self.max_freq
        ).to(device=spec.device, dtype=spec.dtype)
        out = torch.tensordot(spec, matrix, dims=1)
        if self.power_to_db:
            out = self._dbscale(out)
        return out.transpose(-1, -2).to(compute)

    def _dbscale(self, x: torch.Tensor) -> torch.Tensor:
        log_spec = 10.0 * torch.log10(torch.clamp(x, min=self.min_power))
        ref = max(abs(float(self.ref_power)), self.min_power)
        log_spec = log_spec - 10.0 * math.log10(ref)
        # Keras clips against the maximum over the whole batch, not per example.
        return torch.maximum(log_spec, log_spec.max() - self.top_db)

    @staticmethod
    def _hertz_to_mel(hertz: torch.Tensor) -> torch.Tensor:
        return _MEL_HIGH_FREQUENCY_Q * torch.log(1.0 + hertz / _MEL_BREAK_FREQUENCY_HERTZ)

    def linear_to_mel_weight_matrix(
        self,
        num_mel_bins: int = 20,
        num_spectrogram_bins: int = 129,
        sampling_rate=8000,
        lower_edge_hertz: float = 125.0,
        upper_edge_hertz: float = 3800.0,
        dtype="float32",
    ) -> torch.Tensor:
        """The HTK mel filterbank ``(num_spectrogram_bins, num_mel_bins)``, peaks of 1."""
        dtype = backend.standardize_dtype(dtype)
        nyquist = torch.tensor(float(sampling_rate), dtype=dtype) / 2.0
        linear = torch.linspace(0.0, float(nyquist), num_spectrogram_bins, dtype=dtype)[1:]
        bins_mel = self._hertz_to_mel(linear).unsqueeze(1)
        edges = torch.linspace(
            float(self._hertz_to_mel(torch.tensor(float(lower_edge_hertz), dtype=dtype))),
            float(self._hertz_to_mel(torch.tensor(float(upper_edge_hertz), dtype=dtype))),
            num_mel_bins + 2,
            dtype=dtype,
        )
        lower, center, upper = (edges[i : i + num_mel_bins].reshape(1, -1) for i in range(3))
        lower_slopes = (bins_mel - lower) / (center - lower)
        upper_slopes = (upper - bins_mel) / (upper - center)
        weights = torch.clamp(torch.minimum(lower_slopes, upper_slopes), min=0.0)
        return F.pad(weights, (0, 0, 1, 0))  # the DC bin, which HTK excludes

    def compute_output_shape(self, input_shape):
        def frames(n):
            return None if n is None else (n + self.sequence_stride + 1) // self.sequence_stride

        if len(input_shape) == 1:
            return (self.num_mel_bins, frames(input_shape[0]))
        return (input_shape[0], self.num_mel_bins, frames(input_shape[1]))

    def get_config(self):
        config = super().get_config()
        config.update(
            fft_length=self.fft_length,
            sequence_stride=self.sequence_stride,
            sequence_length=self.sequence_length,
            window=self.window,
            sampling_rate=self.sampling_rate,
            num_mel_bins=self.num_mel_bins,
            min_freq=self.min_freq,
            max_freq=self.max_freq,
            power_to_db=self.power_to_db,
            top_db=self.top_db,
            mag_exp=self.mag_exp,
            min_power=self.min_power,
            ref_power=self.ref_power,
        )
        return config
