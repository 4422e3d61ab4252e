"""Did-you-mean hints for misspelt names, layout hints, and values shown in error messages."""
import difflib

# Longer words get no hint: difflib's cost grows with the product of the lengths, and no
# name is this long, so a huge string in a definition costs nothing but its display.
MAX_HINT_LENGTH = 64
# At most this many characters of an offending value are shown in a message.
MAX_SHOWN = 80


def show(value, limit=MAX_SHOWN):
    """``repr(value)`` cut to ``limit`` characters with an ellipsis (and the full length
    of a long string), so that an error message stays readable whatever the value is."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit - 3]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def closest(word, choices, n=1, cutoff=0.6):
    """Up to ``n`` of ``choices`` that look like ``word`` (ignoring case), best first;
    none for a word longer than MAX_HINT_LENGTH."""
    word = str(word) if not isinstance(word, str) else word
    if len(word) > MAX_HINT_LENGTH:
        return []
    by_lower = {}
    for choice in map(str, choices):
        if len(choice) <= MAX_HINT_LENGTH * 2:
            by_lower.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[c] for c in close]


def did_you_mean(word, choices, n=1, cutoff=0.6):
    """``"; did you mean 'x'?"`` or ``""`` when nothing is close."""
    close = closest(word, choices, n, cutoff)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def looks_channels_last(shape):
    """Whether a per-sample image shape reads as (height, width, channels): a last axis
    of at most 4 (grey, RGB, RGBA) after a first one that is larger than 4."""
    shape = tuple(shape)
    return len(shape) == 3 and 1 <= shape[2] <= 4 < shape[0]


def channels_first(shape):
    """``(H, W, C)`` as cynet's ``(C, H, W)``."""
    h, w, c = shape
    return (c, h, w)


def channels_last_hint(input_shape):
    """``"; ..."``: the hint that cynet is NCHW, for an ``input_shape`` that looks
    channels-last, or ``""``."""
    if not looks_channels_last(input_shape):
        return ""
    return (f"; input_shape {list(input_shape)} looks channels-last (height, width, "
            f"channels), but cynet is NCHW: give (channels, height, width), "
            f"{list(channels_first(input_shape))}")


def layout_hint(given, wanted):
    """``"; ..."`` when per-sample shapes ``given`` (the data's) and ``wanted`` (the
    model's) differ only in where the channels are, or ``""``: cynet is NCHW."""
    given, wanted = tuple(given), tuple(wanted)
    if looks_channels_last(wanted) and given == channels_first(wanted):
        return channels_last_hint(wanted)
    if looks_channels_last(given) and channels_first(given) == wanted:
        return ("; the images look channels-last (N, height, width, channels), but cynet "
                "is NCHW: transpose them, x.transpose(0, 3, 1, 2)")
    return ""
