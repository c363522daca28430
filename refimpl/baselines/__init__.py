"""The paper's conventional baselines.

    opensmile   eGeMAPS and ComParE 2013 functionals, and the MFCC LLDs, by openSMILE itself
    boaw        bags of audio words, bit-identical to openXBOW 1.3.1 (csrc/_boaw.pyx)
    boaw_fast   boaw's fast mode: the nearest words from BLAS distances
    estimators  Functionals and BoAWTransformer: the baselines as scikit-learn estimators
                (imported on first use: scikit-learn takes seconds to import)
    openxbow    openXBOW's own jar: the oracle boaw is tested against
"""
