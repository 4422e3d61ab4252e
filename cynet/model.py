"""Model: a validated definition's layers, trained, evaluated, saved and loaded."""
import json
import time

import numpy as np

from . import registry
from ._atomic import atomic_write
from ._chunks import kernel_threading
from .definition import DefinitionError, build_layers, load_json, parse
from .losses import get_loss
from .optimizers import make_optimizer
from .schedules import make_schedule

FORMAT_VERSION = 1


class WeightsFileError(ValueError):
    """A weights or checkpoint file that cannot be used, naming the file and the problem."""
DEFAULT_PREDICT_BATCH = 256


def _as_inputs(x, input_shape):
    """Check a batch-first input array against the model's per-sample shape."""
    x = np.asarray(x)
    if x.dtype.kind not in "uif":
        raise TypeError(f"x must be a numeric array, got dtype {x.dtype}")
    if x.ndim == len(input_shape) and tuple(x.shape) == tuple(input_shape):
        raise ValueError(f"x has shape {x.shape}: give a batch, shape (N,) + {tuple(input_shape)}")
    if x.shape[1:] != tuple(input_shape):
        raise ValueError(
            f"x has per-sample shape {x.shape[1:]}, but the model's input_shape is "
            f"{tuple(input_shape)}"
        )
    return x


# value / 255 for every byte, correctly rounded: a table lookup scales a uint8 batch
_UINT8_SCALE = np.arange(256, dtype=np.float32) / np.float32(255)


def _to_float32(xb):
    """uint8 images scale to [0, 1]; other inputs are used as given, in float32."""
    if xb.dtype == np.uint8:
        return _UINT8_SCALE[xb]
    return xb.astype(np.float32, copy=False)


class Model:
    """A sequential network built from a JSON definition (see ``from_dict``)."""

    def __init__(self, definition, layers, output_shape, seed):
        self.definition = definition
        self.layers = layers
        self.output_shape = output_shape
        self.seed = seed
        self.loss_fn = get_loss(definition.loss)
        self.optimizer = make_optimizer(definition.optimizer)
        self.schedule = make_schedule(definition.optimizer.get("schedule"))
        self.base_lr = self.optimizer.lr
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        self.epoch = 0
        self.history = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, doc):
        """Validate ``doc`` (see API: model definitions) and build the model."""
        definition = parse(doc)
        seed = definition.training.get("seed")
        if seed is None:  # record a fresh seed so the run can be repeated
            seed = int(np.random.SeedSequence().entropy % (2**32))
            definition.training["seed"] = seed
        layers, out_shape = build_layers(definition, np.random.SeedSequence([seed, 0]))
        return cls(definition, layers, out_shape, seed)

    @classmethod
    def from_json(cls, path):
        return cls.from_dict(load_json(path))

    @property
    def input_shape(self):
        return tuple(self.definition.input_shape)

    @property
    def n_outputs(self):
        return int(np.prod(self.output_shape))

    def to_dict(self):
        """The definition, with each layer's full configuration."""
        doc = self.definition.to_dict()
        doc["layers"] = [{"type": spec["type"], **layer.get_config()}
                         for spec, layer in zip(self.definition.layers, self.layers)]
        return doc

    # ------------------------------------------------------------------ parameters
    def parameters(self):
        """Trainable arrays by name (``layers.{i}.{param}``); the same objects layers use."""
        return {f"layers.{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    def gradients(self):
        return {f"layers.{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    # ------------------------------------------------------------------ passes
    def forward(self, x, training=False):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:
                break
        return grad

    def _check_labels(self, y, n):
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} labels for {n} samples")
        if self.definition.loss == "cross_entropy":
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise TypeError(f"y must be a 1-D array of integer class labels, got {y.dtype} {y.shape}")
            if n:
                lo, hi = int(y.min()), int(y.max())
                if lo < 0 or hi >= self.n_outputs:
                    bad = lo if lo < 0 else hi
                    raise ValueError(
                        f"y holds label {bad}, outside [0, {self.n_outputs}) for a model "
                        f"with {self.n_outputs} outputs"
                    )
        return y

    def train_step(self, xb, yb):
        """One optimisation step on a batch; returns (loss, number of correct predictions)."""
        out = self.forward(_to_float32(xb), training=True)
        loss, grad = self.loss_fn(out, yb)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss} in epoch {self.epoch + 1}; "
                f"try a lower learning rate (optimizer.lr)"
            )
        self.backward(grad)
        self.optimizer.step(self.parameters(), self.gradients())
        return loss, self._correct(out, yb)

    def _correct(self, out, y):
        """Correct predictions: labels, or one-hot targets (mse), against the argmax."""
        if out.ndim != 2:
            return 0
        if np.ndim(y) == 2 and np.shape(y) == out.shape:
            y = np.argmax(y, axis=1)
        if np.ndim(y) != 1:
            return 0
        return int(np.count_nonzero(out.argmax(axis=1) == y))

    # ------------------------------------------------------------------ training
    def fit(self, x, y, epochs=None, batch_size=None, validation_data=None, callback=None,
            on_batch=None):
        """Train with shuffled minibatches; returns the list of per-epoch metrics.

        ``epochs`` and ``batch_size`` default to the definition's ``training`` values.
        Validation metrics come from ``validation_data=(x_val, y_val)``, else from the
        definition's ``validation_split`` (the last fraction of ``x``, held out).
        ``callback(metrics)`` is called after each epoch and ``on_batch(done, total, loss)``
        after each batch. Calling ``fit`` again continues training (the epoch counter and
        learning-rate schedule carry on).
        """
        training = self.definition.training
        epochs = training["epochs"] if epochs is None else int(epochs)
        batch_size = training["batch_size"] if batch_size is None else int(batch_size)
        if epochs < 0 or batch_size < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
        x = _as_inputs(x, self.input_shape)
        y = self._check_labels(y, len(x))
        split = training.get("validation_split") or 0.0
        if validation_data is None and split > 0:
            n_val = max(1, int(round(len(x) * split)))
            x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        if len(x) == 0:
            raise ValueError("no training samples")
        target = self.epoch + epochs
        # the schedule spans the definition's epochs, so a run split over several fit
        # calls (or resumed) follows the same learning-rate curve as one uninterrupted call
        horizon = max(training["epochs"], target)
        with kernel_threading():
            self._train_epochs(x, y, target, horizon, batch_size, validation_data, callback,
                               on_batch)
        return self.history

    def _train_epochs(self, x, y, target, horizon, batch_size, validation_data, callback,
                      on_batch):
        while self.epoch < target:
            start = time.perf_counter()
            self.optimizer.lr = self.schedule.lr_at(self.base_lr, self.epoch, horizon)
            order = self.rng.permutation(len(x))
            total_loss, correct = 0.0, 0
            n_batches = -(-len(x) // batch_size)
            for b, b0 in enumerate(range(0, len(x), batch_size)):
                idx = order[b0:b0 + batch_size]
                loss, ok = self.train_step(x[idx], y[idx])
                total_loss += loss * len(idx)
                correct += ok
                if on_batch is not None:
                    on_batch(b + 1, n_batches, loss)
            self.epoch += 1
            metrics = {"epoch": self.epoch, "loss": total_loss / len(x),
                       "accuracy": correct / len(x)}
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                metrics.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            metrics["seconds"] = time.perf_counter() - start
            self.history.append(metrics)
            if callback is not None:
                callback(metrics)

    # ------------------------------------------------------------------ inference
    def _batches(self, x, batch_size):
        batch_size = DEFAULT_PREDICT_BATCH if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        with kernel_threading():
            for b0 in range(0, len(x), batch_size):
                yield b0, self.forward(_to_float32(x[b0:b0 + batch_size]), training=False)

    def predict(self, x, batch_size=None):
        """Network outputs (class scores) in eval mode, computed in batches."""
        x = _as_inputs(x, self.input_shape)
        out = np.empty((len(x),) + tuple(self.output_shape), dtype=np.float32)
        for b0, yb in self._batches(x, batch_size):
            out[b0:b0 + len(yb)] = yb
        return out

    def evaluate(self, x, y, batch_size=None):
        """``{"loss", "accuracy"}`` over ``(x, y)`` in eval mode."""
        x = _as_inputs(x, self.input_shape)
        y = self._check_labels(y, len(x))
        if len(x) == 0:
            raise ValueError("cannot evaluate on zero samples")
        total_loss, correct = 0.0, 0
        for b0, out in self._batches(x, batch_size):
            yb = y[b0:b0 + len(out)]
            total_loss += self.loss_fn(out, yb)[0] * len(out)
            correct += self._correct(out, yb)
        return {"loss": total_loss / len(x), "accuracy": correct / len(x)}

    # ------------------------------------------------------------------ training state
    def training_state(self):
        """``(arrays, meta)``: everything needed to continue training exactly."""
        arrays = {f"model.{k}": v for k, v in self.state_arrays().items()}
        arrays.update({f"optimizer.{k}": v for k, v in self.optimizer.state_dict().items()})
        meta = {
            "epoch": self.epoch,
            "history": self.history,
            "rng": self.rng.bit_generator.state,
            "layer_rngs": [layer.rng.bit_generator.state for layer in self.layers],
        }
        return arrays, meta

    def load_training_state(self, arrays, meta, source="checkpoint"):
        """Restore what ``training_state`` returned (weights, optimizer, RNGs, epoch)."""
        model = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
        opt = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        self.load_state_arrays(model, source)
        self.optimizer.load_state_dict(opt)
        self.rng.bit_generator.state = meta["rng"]
        for layer, state in zip(self.layers, meta["layer_rngs"], strict=True):
            layer.rng.bit_generator.state = state
        self.epoch = int(meta["epoch"])
        self.history = list(meta["history"])

    # ------------------------------------------------------------------ persistence
    def state_arrays(self):
        """Every array that defines the trained model, by name (for ``save``)."""
        arrays = {}
        for i, layer in enumerate(self.layers):
            for k, v in layer.params.items():
                arrays[f"layers.{i}.params.{k}"] = v
            for k, v in layer.buffers.items():
                arrays[f"layers.{i}.buffers.{k}"] = v
        return arrays

    def _layer_sources(self):
        out = []
        for spec in self.definition.layers:
            info = registry.source(spec["type"])
            out.append({"type": spec["type"], "package": info.package if info else "",
                        "version": info.version if info else ""})
        return out

    def save(self, path):
        """Write weights, buffers and the definition to one ``.npz`` (no pickle)."""
        meta = {"format_version": FORMAT_VERSION, "layers": self._layer_sources()}
        arrays = dict(self.state_arrays())
        arrays["definition"] = np.array(json.dumps(self.definition.to_dict()))
        arrays["cynet_meta"] = np.array(json.dumps(meta))
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path):
        """A model saved by ``save``; checks that every array fits the definition."""
        import zipfile

        if not zipfile.is_zipfile(path):
            raise WeightsFileError(f"{path}: not an .npz file (expected cynet weights)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            raise WeightsFileError(f"{path}: not a readable cynet weights file ({exc})") from None
        if "definition" not in arrays or "cynet_meta" not in arrays:
            raise WeightsFileError(f"{path}: not a cynet weights file (no definition inside)")
        try:
            meta = json.loads(str(arrays.pop("cynet_meta")))
            doc = json.loads(str(arrays.pop("definition")))
        except ValueError as exc:
            raise WeightsFileError(f"{path}: corrupt metadata ({exc})") from None
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise WeightsFileError(
                f"{path}: written by a newer cynet (format {meta['format_version']}; this "
                f"version reads up to {FORMAT_VERSION}); upgrade cynet"
            )
        try:
            model = cls.from_dict(doc)
        except DefinitionError as exc:
            missing = _missing_plugin(meta, exc)
            raise DefinitionError(exc.place, f"{path}: {missing or exc}") from None
        model.load_state_arrays(arrays, path)
        return model

    def load_state_arrays(self, arrays, source="weights"):
        """Copy saved arrays into the layers, checking names, shapes and dtypes."""
        expected = self.state_arrays()
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing or extra:
            raise WeightsFileError(
                f"{source}: arrays do not match the model (missing {missing[:3]}, "
                f"unexpected {extra[:3]})"
            )
        for name, target in expected.items():
            value = arrays[name]
            if value.shape != target.shape:
                raise WeightsFileError(
                    f"{source}: {name} has shape {value.shape}, expected {target.shape}")
            if value.dtype.kind != "f":
                raise WeightsFileError(f"{source}: {name} has dtype {value.dtype}, expected float")
            target[...] = value


def _missing_plugin(meta, exc):
    """Name the package of a layer type that is not installed, if that is the problem."""
    for i, entry in enumerate(meta.get("layers", [])):
        if exc.place == f"layers[{i}].type" and entry.get("package"):
            return (
                f"layer type {entry['type']!r} comes from the package {entry['package']} "
                f"{entry.get('version', '')}".rstrip()
                + ", which is not installed (or failed to load); install it to load this model"
            )
    return None


def atomic_savez(path, arrays):
    """Write an ``.npz`` atomically (never half-written)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))
