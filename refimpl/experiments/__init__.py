"""The paper's experiments, built on the public API of the stages below.

    adapters    the feature sets of the grid as thin adapters (eGeMAPS, ComParE, BoAW,
                deep spectrum)
    grid        features (cached per file) -> models (cached per unit) -> rows
    results     the rows (GridRow) and the raw files results.csv / results.json
    tables      Tables 5-9, and the view of the rows they are drawn from
    figures     Figures 2-3
    trust       bootstrap intervals and the spread over seeds (trust.md)
    paper       the paper's published cells, its claims and contradictions
    comparison  the paper's numbers beside ours (paper_comparison.md)
    report      every output of a run, gathered in report.md
    reproduce   `make reproduce`: corpus and conditions, then the grid
"""
