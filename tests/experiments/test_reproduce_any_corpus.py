"""`refimpl reproduce` on corpora of one's own: a manifest with clean audio only (its noisy
and denoised conditions made on the way), at 8 to 48 kHz, with the whole grid or its clean
column only, and a corpus in FAU-AIBO's layout, each to the comparison page."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.corpus.test_corpus import make_aibo

REPO_ROOT = Path(__file__).resolve().parents[2]


def reproduce(tmp_path, *args):
    """The command as a user runs it, with its own cache."""
    env = dict(os.environ, REFIMPL_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "refimpl", "reproduce", "--jobs", "1",
                           "--features", "egemaps", "--out", str(tmp_path / "results"), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, env=env)


def results(tmp_path):
    with open(tmp_path / "results" / "results.csv") as f:
        return list(csv.DictReader(f))


def check_grid(tmp_path, conditions):
    rows = results(tmp_path)
    cells = {(r["task"], r["balancing"], r["train"], r["test"]) for r in rows}
    assert cells == {(t, b, tr, te) for t in ("mood", "pitch") for b in ("Un.", "Ov.")
                     for tr in conditions for te in conditions}
    assert all(r["n_test"] == "3" for r in rows)
    page = (tmp_path / "results" / "paper_comparison.md").read_text()
    assert "corpus is a different corpus" in page
    assert "pitch (3-class) for the paper's 5-class" in page
    return page


@pytest.mark.parametrize("rate", [44100,
                                  pytest.param(8000, marks=pytest.mark.slow),
                                  pytest.param(16000, marks=pytest.mark.slow),
                                  pytest.param(22050, marks=pytest.mark.slow),
                                  pytest.param(48000, marks=pytest.mark.slow)])
def test_a_clean_only_manifest_runs_end_to_end(make_clean_corpus, noise_folder, tmp_path, rate):
    manifest = make_clean_corpus(rate)
    done = reproduce(tmp_path, "--corpus", str(manifest), "--noise-dir", str(noise_folder))
    assert done.returncode == 0, done.stderr[-3000:]
    page = check_grid(tmp_path, ("clean", "noisy", "denoised"))
    assert "The paper's claims, checked" in page and "Every published cell" in page
    assert "The paper's claims" in done.stdout      # the claims list printed at the end
    completed = list((tmp_path / "cache" / "conditions").glob("corpus-*/seed0/corpus.csv"))
    assert len(completed) == 1
    for r in csv.DictReader(open(completed[0])):
        assert sf.info(r["path_noisy"]).samplerate == sf.info(r["path_denoised"]).samplerate \
            == rate


def test_the_clean_column_only(make_clean_corpus, tmp_path):
    done = reproduce(tmp_path, "--corpus", str(make_clean_corpus(44100)), "--conditions",
                     "clean")
    assert done.returncode == 0, done.stderr[-3000:]
    page = check_grid(tmp_path, ("clean",))
    assert not (tmp_path / "cache" / "conditions").exists()     # nothing generated
    line = next(l for l in page.splitlines() if l.startswith("| Denoising lifts ComParE"))
    assert "**not checked**" in line
    table = (tmp_path / "results" / "table5.md").read_text()
    assert "Un. clean | Ov. clean |" in table and "noisy" not in table


AIBO = ([(f"Ohm_{spk:02d}_{t:03d}_00", l2, l5) for spk in (3, 7, 20, 25)
         for t, (l2, l5) in enumerate([("IDL", "N"), ("NEG", "A"), ("NEG", "E"), ("IDL", "P"),
                                       ("NEG", "R")])]
        + [(f"Mont_{spk:02d}_{t:03d}_00", l2, l5) for spk in (1, 2)
           for t, (l2, l5) in enumerate([("IDL", "N"), ("NEG", "A"), ("NEG", "E"),
                                         ("IDL", "P"), ("IDL", "R")])])


def test_an_aibo_layout_runs_to_the_comparison_page(tmp_path):
    """FAU-AIBO's layout (label files, Ohm/Mont chunk ids, speaker numbers on both sides
    of the paper's fold border) with a room-microphone folder: the room audio is the noisy
    condition as it is, the denoised one is made from it; the comparison page sets all 144
    published cells beside ours."""
    root = make_aibo(tmp_path / "aibo", chunks=AIBO, room=[c for c, _, _ in AIBO])
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    classes = "AENPR"
    for cid, _, l5 in AIBO:
        f0 = 150 + 40 * classes.index(l5)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) * (0.5 - 0.5 * np.cos(2 * np.pi * 5 * t))
        sf.write(str(root / "wav" / f"{cid}.wav"), x + 0.002 * rng.normal(size=t.size), 16000,
                 subtype="PCM_16")
        sf.write(str(root / "room" / f"{cid}.wav"), 0.7 * x + 0.02 * rng.normal(size=t.size),
                 16000, subtype="PCM_16")
    done = reproduce(tmp_path, "--corpus", "aibo", "--root", str(root), "--noisy-dir",
                     str(root / "room"))
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "results" / "paper_comparison.md").read_text()
    assert "The paper's numbers beside ours (FAU-AIBO)" in page
    with open(tmp_path / "results" / "paper_comparison.csv") as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 144
    ours = [c for c in cells if c["Feature set"] == "eGeMAPS"]
    assert len(ours) == 36 and all(c["Ours UAR [%]"] not in ("", "–") for c in ours)
    assert all(c["Ours UAR [%]"] == "–" for c in cells if c["Feature set"] != "eGeMAPS")
    assert "(63.0; " in (tmp_path / "results" / "table5.md").read_text()
    # the room microphone was used as given: no simulated noisy file, denoised ones made
    made = tmp_path / "cache" / "conditions" / "aibo" / "seed0"
    assert not (made / "noisy").exists() and len(list((made / "denoised").iterdir())) == 30
    meta = json.loads((tmp_path / "results" / "results.json").read_text())["meta"]
    assert meta["train / test files"] == "20 / 10"
