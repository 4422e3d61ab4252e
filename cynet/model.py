"""Model: a validated definition's layers, trained, evaluated, saved and loaded."""
import json
import re
import time

import numpy as np

from . import registry
from ._atomic import atomic_write
from ._chunks import kernel_threading
from ._npzfile import DEFINITION_ARRAY, read_cynet_file
from ._suggest import did_you_mean
from .definition import DefinitionError, build_layers, load_json, parse
from .losses import get_loss
from .optimizers import make_optimizer
from .schedules import make_schedule

# of the weights files ``Model.save`` writes; a file of a higher version is refused
FORMAT_VERSION = 1
WEIGHTS_META = "cynet_meta"


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


_255 = np.float32(255)


def _to_float32(xb):
    """uint8 images scale to [0, 1]; other inputs are used as given, in float32."""
    if xb.dtype == np.uint8:
        # a float32 division, correctly rounded (6x faster than a 256-entry table lookup)
        return np.divide(xb, _255, dtype=np.float32)
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
        self._fused_for, self._fused = None, frozenset()

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
    @property
    def _relu_into_pool(self):
        """The fused ReLUs of the layers as they are now (see ``_relu_pool_pairs``)."""
        key = tuple(map(id, self.layers))
        if key != self._fused_for:
            self._fused_for, self._fused = key, _relu_pool_pairs(self.layers)
        return self._fused

    def forward(self, x, training=False):
        fused = self._relu_into_pool
        for i, layer in enumerate(self.layers):
            if i in fused:  # this ReLU is applied by the MaxPool2D after it
                continue
            if i - 1 in fused:
                x = layer.forward(x, training=training, relu=True)
            else:
                x = layer.forward(x, training=training)
        return x

    def backward(self, grad):
        fused = self._relu_into_pool
        for i in range(len(self.layers) - 1, -1, -1):
            if i in fused:
                continue
            grad = self.layers[i].backward(grad)
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
            n_val = validation_count(len(x), split)
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
        """Restore what ``training_state`` returned (weights, optimizer, RNGs, epoch).
        Everything is checked first: a WeightsFileError naming ``source`` and the problem
        leaves the model as it was."""
        fail = _failing(source)
        model, opt = {}, {}
        for key, value in arrays.items():
            group, _, name = key.partition(".")
            if group not in ("model", "optimizer") or not name:
                raise fail(f"unexpected array {key!r} (a checkpoint holds model.* and "
                           "optimizer.* arrays)")
            (model if group == "model" else opt)[name] = value
        epoch, history = _checked_progress(meta, fail)
        rng_states = _checked_rng_states(meta, self, fail)
        optimizer = self._loaded_optimizer(opt, epoch, fail)
        self.load_state_arrays(model, source)
        self.optimizer = optimizer
        for generator, state in rng_states:
            generator.bit_generator.state = state
        self.epoch, self.history = epoch, history

    def _loaded_optimizer(self, state, epoch, fail):
        """A fresh optimizer holding ``state``, checked against the parameters: after an
        epoch every parameter has its state, each buffer the parameter's shape and dtype."""
        params = self.parameters()
        if "lr" not in state:
            raise fail("no optimizer.lr array: the optimizer state is incomplete")
        lr = state["lr"]
        if np.shape(lr) != () or getattr(lr, "dtype", np.dtype(object)).kind not in "iuf":
            raise fail(f"optimizer.lr: file has {_kind(lr)}, the model needs one number")
        for key in state:
            if key != "lr" and not key.rpartition("/")[0]:
                raise fail(f"unexpected array 'optimizer.{key}' (optimizer state is "
                           "optimizer.lr and optimizer.<parameter>/<entry>)")
        slots = {key.rpartition("/")[0] for key in state if key != "lr"}
        unknown = sorted(slots - set(params))
        if unknown:
            raise fail(f"optimizer state for {unknown[0]!r}, which is not a parameter of the "
                       f"model{did_you_mean(unknown[0], params)}")
        if (epoch > 0 or slots) and slots != set(params):
            absent = sorted(set(params) - slots)
            raise fail(f"no optimizer state for {absent[0]!r}"
                       + (f" (and {len(absent) - 1} more parameters)" if len(absent) > 1 else "")
                       + f" after epoch {epoch}: the optimizer state is incomplete")
        for key, value in state.items():
            name, _, entry = key.rpartition("/")
            if key == "lr" or entry == "step":
                continue
            param = params[name]
            if np.shape(value) != param.shape or getattr(value, "dtype", None) != param.dtype:
                raise fail(f"optimizer.{key}: file has {_kind(value)}, the model needs "
                           f"{param.dtype} {param.shape}")
        optimizer = make_optimizer(self.definition.optimizer)
        try:
            optimizer.load_state_dict(state)
        except (TypeError, ValueError) as exc:
            raise fail(f"optimizer state: {exc}") from None
        return optimizer

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
        """Write weights, buffers and the definition to one ``.npz`` (no pickle), with the
        format version and the package of each layer type in its metadata."""
        meta = {"format_version": FORMAT_VERSION, "layers": self._layer_sources()}
        arrays = dict(self.state_arrays())
        arrays[DEFINITION_ARRAY] = np.array(json.dumps(self.definition.to_dict()))
        arrays[WEIGHTS_META] = np.array(json.dumps(meta))
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path):
        """A model saved by ``save``. A file that is not one, is damaged, was written by a
        newer cynet or holds arrays that do not fit its definition is a WeightsFileError
        naming the file and the problem (a definition this cynet cannot build, such as one
        needing a plugin that is not installed, a DefinitionError)."""
        meta, doc, arrays = read_cynet_file(path, WeightsFileError, WEIGHTS_META,
                                            "weights file", FORMAT_VERSION)
        try:
            model = cls.from_dict(doc)
        except DefinitionError as exc:
            problem = _missing_plugin(meta, doc, exc) or f"its model definition is invalid: {exc}"
            error = DefinitionError(None, f"{path}: {problem}")
            error.place = exc.place
            raise error from None
        model.load_state_arrays(arrays, path)
        return model

    def load_state_arrays(self, arrays, source="weights"):
        """Copy saved arrays into the layers after checking them all against the model:
        names, shapes, dtypes and finite values. A mismatch (say, the weights of another
        architecture) is a WeightsFileError naming each array: ``layers[0].weight: file
        has (8, 1, 3, 3), model needs (4, 1, 3, 3)``; nothing is copied then."""
        expected = self.state_arrays()
        problems = [f"{_display(k)}: missing from the file" for k in expected if k not in arrays]
        problems += [f"unexpected array {k!r}" for k in arrays if k not in expected]
        for name, target in expected.items():
            value = arrays.get(name)
            if value is None:
                continue
            if np.shape(value) != target.shape:
                problems.append(f"{_display(name)}: file has {np.shape(value)}, model needs "
                                f"{target.shape}")
            elif getattr(value, "dtype", None) != target.dtype:
                problems.append(f"{_display(name)}: file has dtype {_kind(value, shape=False)}, "
                                f"model needs {target.dtype}")
            elif not np.isfinite(value).all():
                problems.append(f"{_display(name)}: holds NaN or infinite values")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise WeightsFileError(f"{source}: the arrays do not fit the model: "
                                   + "; ".join(problems[:3]) + more)
        for name, target in expected.items():
            target[...] = arrays[name]


def validation_count(n, split):
    """How many of ``n`` samples a ``validation_split`` of ``split`` holds out (the last
    ones): at least one when ``split > 0``."""
    return max(1, int(round(n * split))) if split > 0 else 0


def _relu_pool_pairs(layers):
    """Indices of the ReLU layers directly followed by a MaxPool2D, which then applies the
    ReLU itself: max-pooling commutes with it, so the ReLU runs on the pooled output (a
    quarter of the elements for 2x2 windows) instead of a pass over the full input, and
    forward and backward give the same values and gradients as the two layers."""
    from .layers.activations import ReLU
    from .layers.pooling import MaxPool2D

    return frozenset(i for i in range(len(layers) - 1)
                     if type(layers[i]) is ReLU and type(layers[i + 1]) is MaxPool2D)


_STATE_NAME = re.compile(r"layers\.(\d+)\.(?:params|buffers)\.(.+)")


def _display(name):
    """``layers.3.params.weight`` as ``layers[3].weight`` (the place in the definition)."""
    match = _STATE_NAME.fullmatch(name)
    return f"layers[{match[1]}].{match[2]}" if match else name


def _kind(value, shape=True):
    dtype = getattr(value, "dtype", type(value).__name__)
    return f"{dtype} {np.shape(value)}" if shape else str(dtype)


def _failing(source):
    """A WeightsFileError factory whose messages start with ``source``."""
    return lambda problem: WeightsFileError(f"{source}: {problem}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_progress(meta, fail):
    """``(epoch, history)`` of training-state metadata: a count of finished epochs and one
    JSON object of metrics per epoch."""
    if not isinstance(meta, dict):
        raise fail("the training state's metadata is not a JSON object")
    for key in ("epoch", "history", "rng", "layer_rngs"):
        if key not in meta:
            raise fail(f"no {key!r} in the training state's metadata")
    epoch, history = meta["epoch"], meta["history"]
    if not _is_int(epoch) or epoch < 0:
        raise fail(f"epoch {json.dumps(epoch)} is not a count of epochs")
    if not isinstance(history, list) or not all(isinstance(m, dict) for m in history):
        raise fail("history is not a list of JSON objects (the metrics of each epoch)")
    if len(history) != epoch:
        raise fail(f"history holds {len(history)} epochs' metrics, but epoch is {epoch}")
    return epoch, [dict(m) for m in history]


def _checked_rng_states(meta, model, fail):
    """``(generator, state)`` for the model's and each layer's random generator, each
    state tried on a generator of the same kind."""
    states = meta["layer_rngs"]
    if not isinstance(states, list) or len(states) != len(model.layers):
        count = len(states) if isinstance(states, list) else "no list of"
        raise fail(f"layer_rngs holds {count} random generator states for a model of "
                   f"{len(model.layers)} layers")
    places = ["rng"] + [f"layer_rngs[{i}]" for i in range(len(states))]
    generators = [model.rng] + [layer.rng for layer in model.layers]
    for place, generator, state in zip(places, generators, [meta["rng"]] + states):
        try:
            type(generator.bit_generator)().state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise fail(f"{place} is not a valid random generator state "
                       f"({exc or type(exc).__name__})") from None
    return list(zip(generators, [meta["rng"]] + states))


def _missing_plugin(meta, doc, exc):
    """Name the package of a layer type that is not installed, if that is the problem
    (the metadata's entry for the failing layer must be of the definition's type)."""
    entries = meta.get("layers")
    layers = doc.get("layers")
    if not isinstance(entries, list) or not isinstance(layers, list):
        return None
    for i, (entry, spec) in enumerate(zip(entries, layers)):
        if (exc.place == f"layers[{i}].type" and isinstance(entry, dict)
                and isinstance(spec, dict) and entry.get("type") == spec.get("type")
                and entry.get("package")):
            return (
                f"layer type {entry['type']!r} comes from the package {entry['package']} "
                f"{entry.get('version', '')}".rstrip()
                + ", which is not installed (or failed to load); install it to load this model"
            )
    return None


def atomic_savez(path, arrays):
    """Write an ``.npz`` atomically (never half-written)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))
