"""Did-you-mean hints for misspelt names."""
import difflib


def closest(word, choices, n=1, cutoff=0.6):
    """Up to ``n`` of ``choices`` that look like ``word``, best first."""
    return difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)


def did_you_mean(word, choices, n=1, cutoff=0.6):
    """``"; did you mean 'x'?"`` or ``""`` when nothing is close."""
    close = closest(word, choices, n, cutoff)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
