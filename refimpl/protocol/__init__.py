"""The classification protocol of the paper (section 3.4), function by function.

A linear SVM trained by stochastic gradient descent on standardised features; its
regularisation strength chosen by speaker-independent 2-fold cross-validation inside the
training partition; unweighted average recall (UAR) as the measure; optional random
oversampling of the minority classes. For bags-of-audio-words the codebook size and the
number of assignments are searched by the same inner cross-validation.

Choices the paper leaves open, made here once and named in the code:

* SGD: scikit-learn's `SGDClassifier(loss="hinge", penalty="l2")` with its default
  learning-rate schedule ("optimal"), shuffling before every epoch, and a fixed 5 epochs
  without a convergence test (`max_iter=5, tol=None`). That is exactly what the
  scikit-learn of the paper's time (0.18, 2017: `n_iter=5` by default, no `tol`) did.
  The newer defaults (`max_iter=1000, tol=1e-3`) change the numbers and are far
  slower on 4096-dimensional deep spectrum features with small alphas, where the
  "optimal" step size is huge and the loss never settles within tolerance. Each sample
  updates the weights on its own ("per-sample updates"); several classes are handled
  one-vs-all, which is what SGDClassifier does. refimpl.protocol.sgd fits these models,
  for all alphas of the inner CV at once, with SGDClassifier's coefficients bit for bit.
* Standardisation: mean and standard deviation fitted on the (non-oversampled) training
  data, then applied to training and test data; a constant feature gets scale 1 (as in
  scikit-learn's StandardScaler), so it becomes 0 instead of NaN.
* Oversampling: every class with fewer than `floor(0.75 * majority)` instances is brought
  to exactly `floor(0.75 * majority)` by adding instances drawn at random *with
  replacement* from that class (its originals all stay). Classes already at or above
  that size are untouched. Oversampling happens only on data that is trained on (inner
  training fold, whole training partition), never on data that is scored.
* Inner CV: train on fold 1 and score on fold 2, and the other way round; the criterion
  is the mean of the two UARs. Ties (exactly equal means) go to the *larger* alpha, the
  more strongly regularised, simpler model.
* UAR: the mean of the per-class recalls over the classes that occur in `y_true`
  (a class without test instances has no recall; balanced_accuracy_score does the same).
* Every random step takes its seed from `seed` through numpy's SeedSequence, so the same
  seed gives the same result bit for bit.

Modules: metrics (confusion, UAR, the z-test), sampling (standardising, oversampling,
seeds), selection (alpha by the inner CV, the final model), boaw_search (Cs and Na, and
the budgeted walk over them the grid takes too), sgd (the SVMs). This package re-exports
their public names.
"""
from refimpl.protocol import sgd
from refimpl.protocol.boaw_search import (BOAW_ASSIGNMENTS, BOAW_BAGS_BUDGET, BOAW_SIZES,
                                          BoawFn, BoawModel, boaw_grid, final_codebook_seed,
                                          na_groups, select_boaw, select_boaw_multi)
from refimpl.protocol.metrics import (SIGNIFICANCE_LEVEL, confusion, significantly_better,
                                      uar, uar_from_confusion, z_test)
from refimpl.protocol.sampling import (OVERSAMPLE_RATIO, check_speaker_independent,
                                       oversample, oversample_indices, standardise)
from refimpl.protocol.selection import (ALPHAS, Model, Result, best_of, evaluate, fit_final,
                                        select_alpha, train_model)
from refimpl.protocol.sgd import SGD_EPOCHS, SGD_SETTINGS, make_svm

__all__ = [
    "sgd",
    # metrics
    "SIGNIFICANCE_LEVEL", "confusion", "uar_from_confusion", "uar", "z_test",
    "significantly_better",
    # sampling
    "OVERSAMPLE_RATIO", "standardise", "oversample_indices", "oversample",
    "check_speaker_independent",
    # selection
    "ALPHAS", "best_of", "select_alpha", "Model", "Result", "fit_final", "evaluate",
    "train_model",
    # the BoAW search
    "BOAW_SIZES", "BOAW_ASSIGNMENTS", "BOAW_BAGS_BUDGET", "BoawFn", "BoawModel", "boaw_grid",
    "na_groups", "final_codebook_seed", "select_boaw_multi", "select_boaw",
    # the SVMs
    "SGD_EPOCHS", "SGD_SETTINGS", "make_svm",
]
