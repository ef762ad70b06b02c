"""A generated classification table of any size, for scale tests."""

import numpy as np
import pandas as pd


def load(rows: int = 20000, seed: int = 7) -> pd.DataFrame:
    """``rows`` rows of a 3-class problem with 20 features (8 informative)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=int(rows), n_features=20, n_informative=8,
                               n_redundant=4, n_classes=3, class_sep=0.8, flip_y=0.05,
                               random_state=int(seed))
    table = pd.DataFrame(X.astype(np.float32).round(4), columns=[f"x{i}" for i in range(20)])
    table["label"] = y.astype(np.int64)
    return table
