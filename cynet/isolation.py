"""Running a plugin's code in a child process first, where it cannot end cynet.

An exception a plugin raises is caught in-process (the registry and gradcheck catch
BaseException), but ``os._exit``, a segfault or an abort in its import or its forward
end whatever process runs them. The diagnostic commands (``cynet layers --detail``,
``validate``, ``summary``, ``gradcheck``) therefore try a third-party layer's import,
and gradcheck its whole check, in a child Python first, and report a child that died as
that plugin's failure.
"""
import os
import signal
import subprocess
import sys

TIMEOUT = 120  # seconds a child may take: a plugin's import, or one layer's gradcheck
_MARK = "cynet-isolated-result:"

# the child says how its work ended; a child that says nothing died in it
_IMPORT = """
import importlib, sys
try:
    module, _, attr = sys.argv[1].partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
except BaseException:
    print({mark!r}, "raised", flush=True)
else:
    print({mark!r}, "returned", flush=True)
""".format(mark=_MARK)

_GRADCHECK = """
import sys
try:
    from cynet.testing import gradcheck_layer
    result = gradcheck_layer(sys.argv[1], raise_on_failure=False)
except BaseException:
    print({mark!r}, "raised", flush=True)
else:
    print({mark!r}, "ok" if result.ok else "failed", str(result).replace("\\n", " "),
          flush=True)
""".format(mark=_MARK)


def _ended(returncode):
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"ended the process (exit status {returncode})"


def _child(code, argument, what):
    """``(report, None)``: the words after the child's mark (``"raised"`` when the work
    raised: run it again in-process for the message); ``(None, why)`` when the child
    died without a report (``os._exit``, a signal) or took too long."""
    # the child imports from where this process does (a folder put on sys.path too)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        done = subprocess.run([sys.executable, "-c", code, argument], capture_output=True,
                              text=True, timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"{what} took longer than {TIMEOUT} s"
    except OSError:  # no child can be started here: the work runs in-process as before
        return "raised", None
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            return line[len(_MARK):].strip(), None
    return None, f"{what} {_ended(done.returncode)}"


def probe_import(target):
    """Why importing ``"module:attr"`` ends a process, or None when it returns."""
    return _child(_IMPORT, target, f"importing {target}")[1]


def gradcheck(name):
    """``(ok, line)`` of the gradient check of layer type ``name``, run in a child; None
    when the check raised there (run it in-process for the message)."""
    report, why = _child(_GRADCHECK, name, "its gradient check")
    if why is not None:
        return False, f"{name}: FAILED to run: {why}"
    status, _, line = report.partition(" ")
    return None if status == "raised" else (status == "ok", line)
