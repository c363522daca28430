"""Deep spectrum features for speech emotion recognition, as a reference implementation.

Cummins, Amiriparian, Hagerer, Batliner, Steidl, Schuller: "An Image-based Deep Spectrum
Feature Representation for the Recognition of Emotional Speech", ACM Multimedia 2017.

The stages, one module each: audio -> image -> blob -> network -> features -> classifier
-> report.
"""
__version__ = "0.1.0"
