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
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports(include=["refimpl", "fuzz_targets"]):
    from fuzz_targets import TARGETS


def main(argv):
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0]] + argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
