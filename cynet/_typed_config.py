"""Configs of the form ``{"type": name, **options}`` (optimizers, schedules)."""
from ._suggest import did_you_mean


def build_typed(config, what, classes, options, option_word="option", required=None,
                ignore=()):
    """Instantiate ``classes[config["type"]]`` with the config's other keys.

    ``options[type]`` lists the keys each type accepts; ``required[type]`` is a
    ``(key, message)`` pair for a key it needs; keys in ``ignore`` are skipped. Errors
    name the type or key, with did-you-mean hints.
    """
    if not isinstance(config, dict):
        raise TypeError(f"{what} config must be a dict, got {type(config).__name__}")
    if "type" not in config:
        raise ValueError(f"{what} config needs a 'type' ({', '.join(classes)}), got {config!r}")
    kind = config["type"]
    if not isinstance(kind, str):
        raise TypeError(f"{what} type must be a string, got {kind!r}")
    if kind not in classes:
        raise ValueError(
            f"unknown {what} type {kind!r}{did_you_mean(kind.lower(), classes)} "
            f"(choose from {', '.join(classes)})")
    kwargs = {k: v for k, v in config.items() if k != "type" and k not in ignore}
    for key in kwargs:
        if key not in options[kind]:
            raise ValueError(
                f"unknown {kind} {option_word} {key!r}{did_you_mean(str(key), options[kind])} "
                f"(valid: {', '.join(options[kind]) or 'none'})")
    need = (required or {}).get(kind)
    if need is not None and need[0] not in kwargs:
        raise ValueError(need[1])
    return classes[kind](**kwargs)
