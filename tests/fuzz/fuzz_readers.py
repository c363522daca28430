"""Coverage-guided fuzzing (atheris, libFuzzer) of the project's own readers: what they
must do with any bytes is return or raise a RefimplError (one line naming the file);
anything else (another exception, a hang past libFuzzer's -timeout, memory past
-rss_limit_mb) is a finding.

    python tests/fuzz/fuzz_readers.py TARGET [libFuzzer options] [CORPUS_DIR ...]

Targets: wav (the RIFF header sniffing behind the truncation warning, then read_audio),
caffemodel (the protobuf codec and AlexNet's checks), shard (the CSV and ARFF shard
readers of --merge), labels (read_labels, CSV and TSV), manifest (a corpus manifest).
Seeds: tests/fuzz/corpus/TARGET/. tests/fuzz/test_fuzz.py runs each for a fixed budget
(slow suite) and every seed once (default suite).
"""
import os
import sys
from pathlib import Path

FRESH_PROCESS = "REFIMPL_FUZZ_FRESH_PROCESS"


def run_in_a_fresh_process():
    """Re-run this script in a child forked from this still-small process, and exit with
    its status. libFuzzer's -rss_limit_mb compares the PEAK resident size (getrusage's
    ru_maxrss), and Linux carries that peak across execve from the parent: started by a
    pytest that has drawn 535 spectrograms (2.2 GB), the fuzzer was "out of memory" before
    its first input. A forked child starts its count from this process's few MB."""
    pid = os.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, FRESH_PROCESS: "1"})
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__" and os.environ.get(FRESH_PROCESS) != "1":
    run_in_a_fresh_process()

import atheris  # noqa: E402  (after the fork: the parent stays small)

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["refimpl", "fuzz_targets"]):
    from fuzz_targets import TARGETS


def main(argv):
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0]] + argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
