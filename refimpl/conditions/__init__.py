"""The paper's three acoustic conditions (section 3.3): clean, noisy, denoised.

    room_simulation   the noisy condition: a simulated room microphone about 3 m away
                      (image-source rooms, real background noise), one reproducible draw
                      per file
    noise_recordings  the background noise it adds: where the recordings are found, their
                      train/test split, their download from the official home
    rir               its room impulse response: pyroomacoustics' bits, on one thread,
                      faster (kernel csrc/_rir.pyx)
    resample          sample-rate conversion for corpora not at 16 kHz
    denoise           the LSTM Mel-mask enhancer: NumPy inference, trained in real Caffe
                      (denoise_caffe.py runs under Caffe's own Python)
    generate          both conditions for a whole corpus, and the manifest of all three
    standin           a generated FAU-AIBO stand-in (layout, the paper's counts, EmoDB
                      chunks, the simulated room microphone) for the paper's scale and the
                      AIBO path
"""
from refimpl.conditions.generate import generate_conditions, generate_denoised, generate_noisy

__all__ = ["generate_noisy", "generate_denoised", "generate_conditions"]
