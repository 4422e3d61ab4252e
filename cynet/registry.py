"""The layer registry: every layer type, built-in or from a plugin, found one way.

Layer types come from the entry-point group ``cynet.layers`` (name = the JSON ``"type"``,
value = ``"package.module:Class"``); cynet declares its own built-ins there too. Listing
reads only metadata; a module is imported when its type is first used. A plugin that
cannot be loaded is recorded (``failures()``) and skipped; cynet's own layers keep working.
``CYNET_DISABLE_PLUGIN_AUTOLOAD=1`` ignores third-party entry points.
"""
import importlib
import inspect
import os
import threading
from importlib import metadata
from typing import NamedTuple

from ._suggest import did_you_mean

GROUP = "cynet.layers"
PACKAGE = "cynet-cnn"  # the distribution that ships the built-in layers

# Used when cynet runs from a source tree without installed metadata; a test checks that
# it equals the [project.entry-points."cynet.layers"] table of pyproject.toml.
BUILTINS = {
    "Conv2D": "cynet.layers.conv:Conv2D",
    "ConvTranspose2D": "cynet.layers.conv_transpose:ConvTranspose2D",
    "MaxPool2D": "cynet.layers.pooling:MaxPool2D",
    "AvgPool2D": "cynet.layers.pooling:AvgPool2D",
    "GlobalAvgPool2D": "cynet.layers.pooling:GlobalAvgPool2D",
    "Flatten": "cynet.layers.shape:Flatten",
    "Dense": "cynet.layers.dense:Dense",
    "ReLU": "cynet.layers.activations:ReLU",
    "LeakyReLU": "cynet.layers.activations:LeakyReLU",
    "Sigmoid": "cynet.layers.activations:Sigmoid",
    "Tanh": "cynet.layers.activations:Tanh",
    "Dropout": "cynet.layers.dropout:Dropout",
    "BatchNorm2D": "cynet.layers.normalization:BatchNorm2D",
    "BatchNorm1D": "cynet.layers.normalization:BatchNorm1D",
    "Identity": "cynet.layers.shape:Identity",
    "Add": "cynet.layers.merge:Add",
    "Concat": "cynet.layers.merge:Concat",
}


class LayerInfo(NamedTuple):
    """One available layer type and where it comes from."""

    type: str
    package: str
    version: str
    origin: str  # "builtin", "entry point" or "register_layer"


class PluginFailure(NamedTuple):
    """A layer type that could not be loaded, and why."""

    type: str
    package: str
    version: str
    error: str


class LayerNotFoundError(KeyError):
    """An unknown, broken or ambiguous layer type. The message is shown as written."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class _Source:
    """A layer type's origin, loaded on first use."""

    def __init__(self, name, target, package, version, origin, cls=None):
        self.name, self.target, self.package = name, target, package
        self.version, self.origin, self.cls = version, origin, cls
        self.error = None

    def info(self):
        return LayerInfo(self.name, self.package, self.version, self.origin)

    def describe(self):
        return f"{self.target} from {self.package} {self.version}".strip()


def _version():
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _plugins_disabled():
    return os.environ.get("CYNET_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in ("", "0")


class Registry:
    def __init__(self):
        self._lock = threading.RLock()
        self._sources = None  # name -> _Source, from entry points (read lazily)
        self._script = {}  # name -> _Source, from register_layer
        self._failures = {}  # name -> PluginFailure
        self._isolate = False  # see isolate_imports

    # ---------------------------------------------------------------- discovery
    def _scan(self):
        if self._sources is not None:
            return self._sources
        own, plugins, seen = [], [], set()
        for ep in metadata.entry_points(group=GROUP):
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else ""
            key = (ep.name, ep.value, package)
            if key in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(key)
            src = _Source(ep.name, ep.value, package, version, "entry point")
            if package == PACKAGE:
                src.origin = "builtin"
                own.append(src)
            else:
                plugins.append(src)
        if not own:  # a source tree without installed metadata
            own = [_Source(n, t, PACKAGE, _version(), "builtin") for n, t in BUILTINS.items()]
        sources = {s.name: s for s in own}
        claims = {}
        if not _plugins_disabled():
            for src in plugins:
                claims.setdefault(src.name, []).append(src)
        for name, claimants in claims.items():
            builtin = sources.get(name)
            if builtin is None and len(claimants) == 1:
                sources[name] = claimants[0]
                continue
            everyone = ([builtin] if builtin else []) + claimants
            listing = " and ".join(c.describe() for c in everyone)
            error = f"layer type {name!r} is claimed by {len(everyone)} sources: {listing}"
            if builtin:
                error += f"; cynet's built-in {name} is used"
            else:  # ambiguous between plugins: none of them wins
                sources[name] = claimants[0]
            for src in claimants:
                src.error = error
                self._failures[src.name + "@" + src.package] = PluginFailure(
                    src.name, src.package, src.version, error
                )
        self._sources = sources
        return sources

    def _all(self):
        merged = dict(self._scan())
        merged.update(self._script)
        return merged

    # ---------------------------------------------------------------- loading
    def _load(self, src):
        if src.cls is not None or src.error is not None:
            return src.cls
        from .layers.base import Layer

        module_name, _, attr = src.target.partition(":")
        if self._isolate and src.origin == "entry point":
            from . import isolation

            src.error = isolation.probe_import(src.target)  # os._exit cannot reach us
            if src.error is not None:
                self._record_failure(src)
                return None
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except BaseException as exc:  # a plugin must never take cynet down, whatever it
            # raises (SystemExit, KeyboardInterrupt, ...)
            src.error = f"cannot import {src.target}: {type(exc).__name__}: {exc}"
        else:
            if inspect.isclass(obj) and issubclass(obj, Layer):
                src.cls = obj
            else:
                src.error = f"{src.target} is {obj!r}, not a subclass of cynet.Layer"
        if src.error is not None:
            self._record_failure(src)
        return src.cls

    def _record_failure(self, src):
        self._failures[src.name + "@" + src.package] = PluginFailure(
            src.name, src.package, src.version, src.error)

    def isolate_imports(self, on=True):
        """Import each third-party layer in a child process first (see
        ``cynet.isolation``): one whose import ends that process is a failure here."""
        self._isolate = on

    # ---------------------------------------------------------------- public
    def get(self, name):
        """The layer class registered as ``name``."""
        with self._lock:
            sources = self._all()
            src = sources.get(name)
            if src is None:
                hint = did_you_mean(name, sources, n=3, cutoff=0.5)
                raise LayerNotFoundError(f"unknown layer type {name!r}{hint}")
            cls = self._load(src)
            if cls is None:
                raise LayerNotFoundError(
                    f"layer type {name!r} from package {src.package} {src.version} could "
                    f"not be loaded: {src.error}"
                )
            return cls

    def source(self, name):
        """The LayerInfo of ``name`` (without importing it), or None."""
        with self._lock:
            src = self._all().get(name)
            return None if src is None else src.info()

    def info_of(self, cls):
        """The LayerInfo of the registered type whose class is ``cls`` (loaded already), or
        None."""
        with self._lock:
            return next((s.info() for s in self._all().values() if s.cls is cls), None)

    def available(self):
        """Every layer type with the package and version it came from, sorted by type."""
        with self._lock:
            return sorted((s.info() for s in self._all().values()), key=lambda i: i.type)

    def failures(self, load=True):
        """Layer types that could not be loaded. ``load``: try to load every plugin to
        find out (importing each); else only what is known so far (conflicting claims,
        and plugins that failed when used)."""
        with self._lock:
            for src in self._all().values():
                if load and src.origin == "entry point":
                    self._load(src)
            return sorted(self._failures.values())

    def register(self, cls, name=None):
        from .layers.base import Layer

        if not (inspect.isclass(cls) and issubclass(cls, Layer)):
            raise TypeError(f"register_layer expects a subclass of cynet.Layer, got {cls!r}")
        name = name or cls.__name__
        with self._lock:
            existing = self._all().get(name)
            if existing is not None and existing.cls is None:
                self._load(existing)  # the same answer whether or not it was used before
            same = existing is not None and existing.cls is not None and (
                existing.cls.__module__, existing.cls.__qualname__
            ) == (cls.__module__, cls.__qualname__)
            if existing is not None and not same:
                raise ValueError(
                    f"layer type {name!r} is already registered by {existing.describe()}; "
                    f"cannot register {cls.__module__}.{cls.__qualname__} under the same name"
                )
            module = cls.__module__
            package = module.split(".")[0]
            self._script[name] = _Source(name, f"{module}:{cls.__qualname__}", package, "",
                                         "register_layer", cls)
        return cls

    def reload(self):
        """Forget what was read from entry points (after installing a plugin, say)."""
        with self._lock:
            self._sources = None
            self._failures = {}


_registry = Registry()
get = _registry.get
source = _registry.source
info_of = _registry.info_of
available = _registry.available
failures = _registry.failures
reload = _registry.reload
isolate_imports = _registry.isolate_imports


def register_layer(name=None):
    """Class decorator registering a layer defined in a script or notebook.

    ``@register_layer()`` uses the class name; ``@register_layer("Name")`` another name.
    A bare ``@register_layer`` works too.
    """
    if isinstance(name, type):  # used bare: @register_layer
        return _registry.register(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"register_layer takes a layer type name (str), got {name!r}")

    def decorate(cls):
        return _registry.register(cls, name)

    return decorate
