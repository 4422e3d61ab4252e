"""Files written by the first release (tests/fixtures/format1, see its README) keep
loading, predicting, evaluating and resuming bit-exactly."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cynet import Model, weights
from test_cli import ok, run

FIXTURES = Path(__file__).parent / "fixtures" / "format1"


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """A copy of the fixtures (resuming writes into its run), as the working directory:
    the definition names its data relatively."""
    folder = shutil.copytree(FIXTURES, tmp_path / "format1")
    monkeypatch.chdir(folder)
    return folder


def arrays(path):
    """A weights file's arrays under today's names, whatever its format."""
    with np.load(path, allow_pickle=False) as f:
        version = json.loads(f["cynet_meta"].item())["format_version"]
        found = {k: f[k] for k in f.files if k not in ("definition", "cynet_meta")}
    return weights.upgraded(found, version)


def test_old_weights_load_and_predict_what_they_predicted():
    model = Model.load(FIXTURES / "run-2-epochs" / "weights.npz")
    x = np.load(FIXTURES / "data.npz")["x_test"]
    expected = np.load(FIXTURES / "expected-scores.npz")
    np.testing.assert_array_equal(model.predict(x), expected["scores"])
    np.testing.assert_array_equal(model.predict(x).argmax(axis=1), expected["labels"])


def test_old_run_directories_evaluate(copy):
    result = ok(run("evaluate", "run-2-epochs", "--data", "data.npz"))
    assert "accuracy" in result.stdout


def test_the_fixtures_are_of_format_1():
    for path in FIXTURES.glob("run-*/*.npz"):
        with np.load(path, allow_pickle=False) as f:
            meta = f["cynet_meta" if path.name == "weights.npz" else "cynet_checkpoint"]
            assert json.loads(meta.item())["format_version"] == 1, path
        assert any(".params." in k for k in np.load(path).files), path


def test_an_old_checkpoint_resumes_to_the_uninterrupted_run(copy):
    ok(run("train", "model.json", "--resume", "run-1-epoch", "--epochs", "2"))
    resumed, whole = arrays(copy / "run-1-epoch" / "weights.npz"), \
        arrays(copy / "run-2-epochs" / "weights.npz")
    assert sorted(resumed) == sorted(whole)
    for k in whole:
        np.testing.assert_array_equal(resumed[k], whole[k], err_msg=k)
