"""Builds the reslens Python package: the pure-Python files in python/reslens/ and the extension
reslens._core, compiled by this repository's CMake tree (target reslens_python) so that pip and
`cmake --build` build the same thing. Used by `pip install --no-build-isolation .`; metadata is in
pyproject.toml. Needs cmake, a C++20 compiler, pybind11-dev, libopenblas-dev and nlohmann-json3-dev
(the Debian packages the README lists); CMAKE_BUILD_PARALLEL_LEVEL sets the build jobs (default 2).
The HTML report page is left out unless RESLENS_BUILD_WEB=ON (it needs node, npm and `npm ci`'s
packages, which an offline install may not have); without it Explanation.to_html() is None and
notebooks show the package's own HTML tables.
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        target = pathlib.Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = pathlib.Path(self.build_temp).resolve() / "cmake"
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                     "-DRESLENS_BUILD_TESTS=OFF", "-DRESLENS_BUILD_TOOLS=OFF", "-DRESLENS_BUILD_PYTHON=ON",
                     f"-DRESLENS_BUILD_WEB={os.environ.get('RESLENS_BUILD_WEB', 'OFF')}",
                     f"-DPython_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "reslens_python", "-j", jobs])
        built = sorted((build_dir / "python" / "reslens").glob("_core*.so"))
        if not built:
            raise RuntimeError(f"the CMake build made no reslens/_core*.so in {build_dir}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


# setuptools wants egg_base to exist before it writes there.
os.makedirs(ROOT / "build" / "pip", exist_ok=True)

setup(
    packages=["reslens"],
    package_dir={"": "python"},
    package_data={"reslens": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("reslens._core")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    # Keep setuptools's own files out of the source tree (build/ is ignored by git).
    options={"build": {"build_base": "build/pip"}, "egg_info": {"egg_base": "build/pip"}},
)
