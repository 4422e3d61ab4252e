"""cynet.isolation: a plugin calling ``os._exit`` (or crashing) in its import or its
forward ends only a child process; ``cynet layers --detail``, ``validate``, ``summary``
and ``gradcheck`` report it as that plugin's failure and carry on. Real processes: an
``os._exit`` cannot be caught in-process, which is the point."""
import os
import subprocess

import pytest

from cynet import isolation
from cli_fixtures import SMALL, cynet_command, fake_distribution, subprocess_env, write_json

PLUGIN = {
    "exits_at_import": "import os\nos._exit(7)\n",
    "crashes_at_import": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "exits_in_forward": """\
        import os
        import cynet


        class Layer(cynet.Layer):
            example = {"config": {}, "input_shape": (2, 3, 3)}

            def forward(self, x, training=True):
                os._exit(9)

            def backward(self, grad_out):
                return grad_out
        """,
    "fine": """\
        import cynet


        class Layer(cynet.Layer):
            example = {"config": {}, "input_shape": (2, 3, 3)}

            def forward(self, x, training=True):
                return x * 2

            def backward(self, grad_out):
                return grad_out * 2
        """,
}
ENTRIES = {"ExitsAtImport": "exits_at_import:Layer", "CrashesAtImport": "crashes_at_import:Layer",
           "ExitsInForward": "exits_in_forward:Layer", "Fine": "fine:Layer"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return fake_distribution(tmp_path_factory.mktemp("site"), "rude-pkg", "2.0", ENTRIES, PLUGIN)


def cynet(site, *args):
    env = subprocess_env(PYTHONPATH=os.pathsep.join(
        [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run(cynet_command() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


def test_probe_import_reports_a_child_that_died(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    assert isolation.probe_import("fine:Layer") is None
    assert isolation.probe_import("no_such_module_here:Layer") is None  # raises: in-process
    assert isolation.probe_import("exits_at_import:Layer") == (
        "importing exits_at_import:Layer ended the process (exit status 7)")
    assert isolation.probe_import("crashes_at_import:Layer") == (
        "importing crashes_at_import:Layer was killed by SIGSEGV")


def test_layers_detail_survives_and_reports_them(site):
    done = cynet(site, "layers", "--detail")
    assert done.returncode == 0, done.stderr
    assert "ExitsAtImport from rude-pkg 2.0: importing exits_at_import:Layer ended the " \
           "process (exit status 7)" in done.stdout
    assert "CrashesAtImport from rude-pkg 2.0" in done.stdout and "SIGSEGV" in done.stdout
    assert "Fine" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "summary"])
def test_validate_and_summary_survive_a_plugin_exiting_at_import(site, tmp_path, command):
    doc = dict(SMALL, layers=[SMALL["layers"][0], {"type": "ExitsAtImport"}] + SMALL["layers"][1:])
    done = cynet(site, command, write_json(tmp_path / "m.json", doc))
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: layers[1].type") and "rude-pkg" in error, error
    assert "ended the process (exit status 7)" in error


def test_gradcheck_survives_a_plugin_exiting_in_forward(site):
    done = cynet(site, "gradcheck", "ExitsInForward", "Fine", "Dense")
    assert done.returncode == 1, (done.stdout, done.stderr)  # one failed
    lines = done.stdout.splitlines()
    assert "ExitsInForward: FAILED to run: its gradient check ended the process (exit " \
           "status 9)" in lines
    assert any(line.startswith("Fine: ok") for line in lines), lines
    assert any(line.startswith("Dense: ok") for line in lines), lines
    assert lines[-1] == "2 of 3 layer types passed"
