"""The paper's conventional baselines.

    opensmile  eGeMAPS and ComParE 2013 functionals, and the MFCC LLDs, by openSMILE itself
    boaw       bags of audio words, bit-identical to openXBOW 1.3.1 (csrc/_boaw.pyx)
    openxbow   openXBOW's own jar: the oracle boaw is tested against
"""
