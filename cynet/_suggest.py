"""Did-you-mean hints for misspelt names."""
import difflib


def closest(word, choices, n=1, cutoff=0.6):
    """Up to ``n`` of ``choices`` that look like ``word`` (ignoring case), best first."""
    by_lower = {}
    for choice in map(str, choices):
        by_lower.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[c] for c in close]


def did_you_mean(word, choices, n=1, cutoff=0.6):
    """``"; did you mean 'x'?"`` or ``""`` when nothing is close."""
    close = closest(word, choices, n, cutoff)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
