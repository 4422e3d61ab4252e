"""Tests of cynet.augment: each augmentation checked image by image against what it
must be (a shift with a zero border, a mirror image, one rectangle of erased pixels of
the allowed sizes), its randomness seeded and spread, and its options checked."""
import math

import numpy as np
import pytest

from cynet.augment import ERASING_DEFAULTS, Augmentation

N, C, H, W = 64, 2, 9, 11


def batch(seed=0):
    """Distinct positive values: a pixel's origin can be told from its value, and a zero
    is a border or erased pixel only."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(N * C * H * W).reshape(N, C, H, W) + 1).astype(np.float32)


def shifted(image, dy, dx):
    """``image`` (C, H, W) moved so that output (i, j) is input (i + dy, j + dx), zeros
    where that lies outside: the obviously-right crop of a zero-padded image."""
    out = np.zeros_like(image)
    for i in range(image.shape[1]):
        for j in range(image.shape[2]):
            if 0 <= i + dy < image.shape[1] and 0 <= j + dx < image.shape[2]:
                out[:, i, j] = image[:, i + dy, j + dx]
    return out


def test_random_crop_is_a_shift_within_the_padding_with_a_zero_border():
    x = batch()
    p = 3
    out = Augmentation.from_config({"random_crop": {"padding": p}})(x, np.random.default_rng(1))
    seen = set()
    for n in range(N):
        matches = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                   if np.array_equal(out[n], shifted(x[n], dy, dx))]
        assert len(matches) == 1, f"image {n} is no shift within {p} pixels"
        seen.add(matches[0])
    assert len(seen) > 20  # of the 49 offsets, drawn per image


def test_horizontal_flip_mirrors_about_half_of_the_images():
    x = batch()
    out = Augmentation.from_config({"horizontal_flip": True})(x, np.random.default_rng(2))
    flipped = [bool(np.array_equal(out[n], x[n, :, :, ::-1])) for n in range(N)]
    kept = [bool(np.array_equal(out[n], x[n])) for n in range(N)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image one or the other
    assert 16 < sum(flipped) < 48


def _erased_rectangle(before, after):
    """(top, left, height, width) of the one rectangle where ``after`` differs from
    ``before`` in every channel alike, or None when nothing changed."""
    changed = (before != after).any(axis=0)
    if not changed.any():
        return None
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    top, left = rows[0], cols[0]
    h, w = rows[-1] - top + 1, cols[-1] - left + 1
    box = np.zeros_like(changed)
    box[top:top + h, left:left + w] = True
    # the values are new draws: each pixel of the box changed (ties with the old value
    # have probability zero)
    assert np.array_equal(changed, box), "the erased pixels are not one rectangle"
    return top, left, h, w


@pytest.mark.parametrize("value", ["random", 0.25])
def test_random_erasing_fills_one_rectangle_of_the_allowed_size(value):
    x = batch()
    n_big = 400
    x = np.concatenate([x] * (n_big // N))
    config = {"random_erasing": {"p": 0.5, "value": value}}
    out = Augmentation.from_config(config)(x, np.random.default_rng(3))
    (s_lo, s_hi), (r_lo, r_hi) = ERASING_DEFAULTS["scale"], ERASING_DEFAULTS["ratio"]
    erased = 0
    for n in range(len(x)):
        box = _erased_rectangle(x[n], out[n])
        if box is None:
            continue
        erased += 1
        top, left, h, w = box
        assert top + h <= H and left + w <= W
        # the rounded sides of an area in [s_lo, s_hi] * H * W with h / w in [r_lo, r_hi]
        area = h * w
        assert (math.sqrt(s_lo * H * W) - 1) ** 2 <= area <= (math.sqrt(s_hi * H * W) + 1) ** 2
        assert (h - 0.5) / (w + 0.5) <= r_hi and (h + 0.5) / (w - 0.5) >= r_lo
        values = out[n][:, top:top + h, left:left + w]
        if value == "random":
            assert ((values >= 0) & (values < 1)).all()
            assert len(np.unique(values)) > 1
        else:
            assert (values == np.float32(value)).all()
        rest = np.ones((H, W), bool)
        rest[top:top + h, left:left + w] = False
        assert np.array_equal(out[n][:, rest], x[n][:, rest])
    # p = 0.5, less the few images whose every attempt fails to fit
    assert 0.35 * len(x) < erased < 0.6 * len(x)


@pytest.mark.parametrize("config", [
    {"random_crop": {"padding": 2}},
    {"horizontal_flip": True},
    {"random_erasing": {}},
    {"random_crop": {"padding": 1}, "horizontal_flip": True, "random_erasing": {"p": 1}},
])
def test_a_seed_gives_the_same_batch_and_the_input_is_left_alone(config):
    x = batch()
    copy = x.copy()
    augment = Augmentation.from_config(config)
    a = augment(x, np.random.default_rng(7))
    b = augment(x, np.random.default_rng(7))
    assert a.dtype == x.dtype and a.shape == x.shape
    assert np.array_equal(a, b)
    assert np.array_equal(x, copy)
    assert not np.array_equal(a, augment(x, np.random.default_rng(8)))


def test_the_draws_do_not_depend_on_the_images():
    # a fixed number of draws per batch: the generator ends in the same state whatever
    # the pixels (so the rest of the run, and a resumed run, draw alike)
    augment = Augmentation.from_config({"random_crop": {"padding": 2}, "horizontal_flip": True,
                                        "random_erasing": {"p": 0.3}})
    states = []
    for x in (batch(0), np.zeros((N, C, H, W), np.float32), batch(5)):
        rng = np.random.default_rng(11)
        augment(x, rng)
        states.append(rng.bit_generator.state["state"])
    assert states[0] == states[1] == states[2]


def test_nothing_configured_is_false():
    assert not Augmentation.from_config({})
    assert not Augmentation.from_config({"horizontal_flip": False})
    assert Augmentation.from_config({"horizontal_flip": True})


@pytest.mark.parametrize("config, exc, argument, words", [
    ({"random_cropp": {"padding": 2}}, ValueError, "random_cropp", "random_crop"),
    ({"random_crop": {}}, ValueError, "random_crop", "padding"),
    ({"random_crop": {"padding": 0}}, ValueError, "random_crop.padding", ">= 1"),
    ({"random_crop": {"padding": 1.5}}, TypeError, "random_crop.padding", "1.5"),
    ({"random_crop": {"pad": 2}}, ValueError, "random_crop.pad", "padding"),
    ({"random_crop": 4}, TypeError, "random_crop", "object"),
    ({"horizontal_flip": "yes"}, TypeError, "horizontal_flip", "'yes'"),
    ({"random_erasing": {"p": 1.5}}, ValueError, "random_erasing.p", "1.5"),
    ({"random_erasing": {"scale": [0.5, 0.1]}}, ValueError, "random_erasing.scale",
     "increasing"),
    ({"random_erasing": {"scale": [0, 0.4]}}, ValueError, "random_erasing.scale", "> 0"),
    ({"random_erasing": {"ratio": [0.3]}}, TypeError, "random_erasing.ratio", "pair"),
    ({"random_erasing": {"value": "mean"}}, TypeError, "random_erasing.value", "'mean'"),
    ({"random_erasing": {"probability": 0.5}}, ValueError, "random_erasing.probability",
     "options: p, scale, ratio, value"),
])
def test_bad_options_name_the_option(config, exc, argument, words):
    with pytest.raises(exc, match=words) as info:
        Augmentation.from_config(config)
    assert info.value.argument == argument
