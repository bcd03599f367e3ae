"""How much a code says about the label: a linear probe and a k-nearest-neighbour classifier,
fitted on training codes and scored on test codes (scikit-learn does the fitting)."""

from __future__ import annotations

import warnings

import numpy as np


def linear_probe_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                          test_labels: np.ndarray, max_iter: int = 500) -> float:
    """Test accuracy of multinomial logistic regression (L2, C = 1) on standardised codes (N, D). Training labels
    of one class leave nothing to fit: the probe then predicts that class, scoring the test labels' share of it.
    (Codes of zero variance are standardised by a scale of 1, so constant codes are fitted as they are.)"""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_labels)) < 2:
        return float(np.mean(np.asarray(test_labels) == train_labels[0])) if len(test_labels) else 0.0
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings():  # lbfgs stopping at max_iter still gives a fair probe; say nothing
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_codes, train_labels)
    return float(probe.score(test_codes, test_labels))


def knn_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray, k: int = 5) -> float:
    """Test accuracy of a k-nearest-neighbour vote (Euclidean distance) among the training codes."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_codes)), algorithm="brute")
    knn.fit(train_codes, train_labels)
    return float(knn.score(test_codes, test_labels))
