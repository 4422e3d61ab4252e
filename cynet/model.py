"""Model: the public façade over a definition's network, its training and its files.

The work is done elsewhere, one concept per module: :mod:`cynet.network` (layers and
their passes), :mod:`cynet.training` (fit, evaluate, predict), :mod:`cynet.checkpoint`
(training state) and :mod:`cynet.weights` (weights files).
"""
import functools

import numpy as np

from . import input_range, memory, training, weights
from .definition import LAYER_KEYS, DefinitionError, build_layers, load_json, parse
from .losses import get_loss
from .network import Network
from .optimizers import make_optimizer
from .schedules import make_schedule
from .training import DEFAULT_PREDICT_BATCH, validation_count  # noqa: F401 (re-exported)
from .weights import FORMAT_VERSION, WeightsFileError, atomic_savez  # noqa: F401


class Model:
    """A network built from a JSON definition (see ``from_dict``), with its loss,
    optimizer, learning-rate schedule and training progress."""

    def __init__(self, definition, layers, output_shape, seed):
        self.definition = definition
        self.network = Network(layers, definition.wiring)
        self.output_shape = output_shape
        self.seed = seed
        self.loss_fn = get_loss(definition.loss)
        smoothing = definition.training.get("label_smoothing")
        if smoothing:  # (a definition allows it with cross_entropy only)
            self.loss_fn = functools.partial(self.loss_fn, label_smoothing=smoothing)
        self.optimizer = make_optimizer(definition.optimizer)
        self.schedule = make_schedule(definition.optimizer.get("schedule"))
        self.base_lr = self.optimizer.lr
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        self.epoch = 0
        self.history = []
        # what the training inputs were (dtype, scaling, range): see cynet.input_range
        self.input_range = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, doc):
        """Validate ``doc`` (see API: model definitions) and build the model."""
        definition = parse(doc)
        seed = definition.training.get("seed")
        if seed is None:  # record a fresh seed so the run can be repeated
            seed = int(np.random.SeedSequence().entropy % (2**32))
            definition.training["seed"] = seed
        # sized before anything is allocated: a model too large for the machine is refused
        shapes, _ = build_layers(definition, 0, allocate=False)
        memory.require("the model", memory.model_need(Network(shapes, definition.wiring)),
                       advice="; use smaller layers")
        layers, out_shape = build_layers(definition, np.random.SeedSequence([seed, 0]))
        return cls(definition, layers, out_shape, seed)

    @classmethod
    def from_json(cls, path):
        return cls.from_dict(load_json(path))

    @property
    def layers(self):
        """The layers, in order (a list: replacing an item replaces that layer)."""
        return self.network.layers

    @layers.setter
    def layers(self, layers):
        self.network.layers = layers

    @property
    def input_shape(self):
        return tuple(self.definition.input_shape)

    @property
    def n_outputs(self):
        return int(np.prod(self.output_shape))

    def to_dict(self):
        """The definition, with each layer's full configuration."""
        doc = self.definition.to_dict()
        doc["layers"] = [{**{k: spec[k] for k in LAYER_KEYS if k in spec}, **layer.get_config()}
                         for spec, layer in zip(self.definition.layers, self.layers)]
        return doc

    # ------------------------------------------------------------------ network
    def parameters(self):
        """Trainable arrays by name (``layers.{i}.{param}``); the same objects layers use."""
        return self.network.parameters()

    def gradients(self):
        return self.network.gradients()

    def buffers(self):
        """Non-trainable state by name (``layers.{i}.{buffer}``)."""
        return self.network.buffers()

    def forward(self, x, training=False):
        return self.network.forward(x, training=training)

    def backward(self, grad):
        return self.network.backward(grad)

    # ------------------------------------------------------------------ training
    def train_step(self, xb, yb):
        """One optimisation step on a batch; returns (loss, number of correct predictions)."""
        return training.train_step(self, xb, yb)

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
        return training.fit(self, x, y, epochs, batch_size, validation_data, callback,
                            on_batch)

    def predict(self, x, batch_size=None):
        """Network outputs (class scores) in eval mode, computed in batches."""
        return training.predict(self, x, batch_size)

    def evaluate(self, x, y, batch_size=None):
        """``{"loss", "accuracy"}`` over ``(x, y)`` in eval mode."""
        return training.evaluate(self, x, y, batch_size)

    # ------------------------------------------------------------------ training state
    def training_state(self):
        """``(arrays, meta)``: everything needed to continue training exactly."""
        from . import checkpoint

        return checkpoint.training_state(self)

    def load_training_state(self, arrays, meta, source="checkpoint"):
        """Restore what ``training_state`` returned (weights, optimizer, RNGs, epoch);
        a state that does not fit is a WeightsFileError and leaves the model as it was."""
        from . import checkpoint

        checkpoint.load_training_state(self, arrays, meta, source)

    # ------------------------------------------------------------------ weights files
    def state_arrays(self):
        """Every array that defines the trained model, by name (for ``save``)."""
        return weights.state_arrays(self.network)

    def load_state_arrays(self, arrays, source="weights"):
        """Copy saved arrays into the layers after checking them all (see
        ``cynet.weights.load_state_arrays``)."""
        weights.load_state_arrays(self.network, arrays, source)

    def save(self, path):
        """Write weights, buffers and the definition to one ``.npz`` (no pickle)."""
        weights.save(path, self.network, self.definition, self.input_range)

    @classmethod
    def load(cls, path):
        """A model saved by ``save``. A file that is not one, is damaged, was written by a
        newer cynet or holds arrays that do not fit its definition is a WeightsFileError
        naming the file and the problem (a definition this cynet cannot build, such as one
        needing a plugin that is not installed, a DefinitionError)."""
        built = []

        def build(meta, doc):  # the model first: its arrays bound what the file may hold
            try:
                built.append(cls.from_dict(doc))
            except DefinitionError as exc:
                problem = (weights.missing_plugin(meta, doc, exc)
                           or f"its model definition is invalid: {exc}")
                error = DefinitionError(None, f"{path}: {problem}")
                error.place = exc.place
                raise error from None
            return weights.capacity(built[0].network)

        meta, _, arrays = weights.read(path, build)
        model = built[0]
        model.load_state_arrays(weights.upgraded(arrays, meta["format_version"]), path)
        model.input_range = input_range.from_meta(
            meta.get("inputs"), lambda problem: WeightsFileError(f"{path}: {problem}"))
        return model
