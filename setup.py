"""Build the Cython kernels in layers_pyx/ into the cynet package.

Environment switches:
  CYNET_NO_OPENMP=1     build without OpenMP (prange loops run serially)
  CYNET_DEBUG_CYTHON=1  build with boundscheck and initializedcheck on
  CYNET_ASAN=1          build with AddressSanitizer and UndefinedBehaviorSanitizer, for
                        testing (Python must load the ASan runtime first: see .ci/run)
"""
import os
import shutil
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("CYNET_DEBUG_CYTHON", "") not in ("", "0")
NO_OPENMP = os.environ.get("CYNET_NO_OPENMP", "") not in ("", "0")
ASAN = os.environ.get("CYNET_ASAN", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
}

# One extension per .pyx; the module lives in the package, the source in layers_pyx/.
MODULES = ["_activations", "_build_info", "_direct", "_im2col", "_losses", "_optim", "_pad",
           "_pool"]

_PROBE_MAIN = "int main(void) { return 0; }\n"

_OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


# Bounds checking sees only memoryview indexing; AddressSanitizer also sees the raw
# pointer arithmetic of the nogil helpers and the C headers (an access outside an array's
# memory, not one into the wrong part of it). UndefinedBehaviorSanitizer is added too, as
# the kernel tests run clean under it; -fno-sanitize-recover makes its first report end
# the process, as ASan's does. -O1 keeps the instrumented kernels fast enough for the
# kernel tests; -g and the frame pointers give the reports source lines and whole stacks.
ASAN_COMPILE_ARGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                     "-fno-sanitize-recover=undefined"]
ASAN_LINK_ARGS = ["-fsanitize=address,undefined"]


class BuildExtOptionalOpenMP(build_ext):
    """Compile with OpenMP when a test program using it compiles and links (and with
    AddressSanitizer for CYNET_ASAN=1)."""

    def _probe_links(self, source, cflags, ldflags):
        tmp = tempfile.mkdtemp(prefix="cynet-probe-")
        try:
            src = Path(tmp, "probe.c")
            src.write_text(source)
            objects = self.compiler.compile([str(src)], output_dir=tmp, extra_postargs=cflags)
            self.compiler.link_executable(
                objects, "probe", output_dir=tmp, extra_postargs=ldflags
            )
            return True
        except Exception:  # any compiler or linker failure means "cannot"
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        # The .so files do not record how they were built: switching between a debug,
        # a serial, an ASan and a normal build must recompile them even if the C is older.
        flavour = f"debug={DEBUG} no_openmp={NO_OPENMP} asan={ASAN}"
        stamp = Path(self.build_temp, "cynet-build-flavour")
        if not stamp.exists() or stamp.read_text() != flavour:
            self.force = True
        if ASAN:
            # Asked for explicitly, so a compiler without it is an error, not a warning:
            # a build that only looks instrumented would pass the tests it exists to fail.
            if self.compiler.compiler_type == "msvc" or not self._probe_links(
                    _PROBE_MAIN, ASAN_COMPILE_ARGS, ASAN_LINK_ARGS):
                raise SystemExit("CYNET_ASAN is set, but the C compiler cannot build a program "
                                 "with -fsanitize=address,undefined (are libasan and libubsan "
                                 "installed?)")
            for ext in self.extensions:
                ext.extra_compile_args += ASAN_COMPILE_ARGS  # the last -O wins
                ext.extra_link_args += ASAN_LINK_ARGS
        cflags, ldflags = _openmp_flags(self.compiler.compiler_type)
        if NO_OPENMP:
            warnings.warn("CYNET_NO_OPENMP is set: building cynet without OpenMP (serial kernels).")
        elif self._probe_links(_OPENMP_PROBE, cflags, ldflags):
            for ext in self.extensions:
                ext.extra_compile_args += cflags
                ext.extra_link_args += ldflags
        else:
            warnings.warn(
                "The C compiler cannot build OpenMP programs: building cynet without OpenMP; "
                "its kernels will run on one thread. Install an OpenMP runtime (e.g. libgomp "
                "or libomp) and rebuild to use several cores."
            )
        super().build_extensions()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(flavour)


# -fno-math-errno: no kernel reads errno, and without it gcc calls libm's sqrtf per
# element instead of inlining (and vectorising) it in the fused Adam step (the training
# benchmark's simple.json with Adam).
# -ffp-contract=off: no fused multiply-adds behind our back, so that the fused optimizer
# steps stay bit-identical to their NumPy sequences whatever -march a build uses.
extensions = [
    Extension(
        f"cynet.{name}",
        [f"layers_pyx/{name}.pyx"],
        include_dirs=["layers_pyx"],  # C headers of the kernels
        extra_compile_args=(["-O3", "-fno-math-errno", "-ffp-contract=off"] if os.name != "nt"
                            else ["/O2"]),
        define_macros=[("CYNET_DEBUG_BUILD", "1")] if DEBUG else [],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["layers_pyx"],
        # keep generated C out of the source tree; a debug build gets its own copy
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        force=DEBUG,
    ),
    cmdclass={"build_ext": BuildExtOptionalOpenMP},
)
