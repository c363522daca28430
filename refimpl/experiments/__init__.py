"""The paper's experiments, built on the public API of the stages below.

    adapters   the feature sets of the grid as thin adapters (eGeMAPS, ComParE, BoAW,
               deep spectrum)
    grid       features (cached per file) -> models (cached per unit) -> rows
    report     Tables 5-9, Figures 2-3, report.md, results.csv
    reproduce  `make reproduce`: corpus and conditions, then the grid
"""
