"""Random labels independent of random features."""

import numpy as np
import pandas as pd


def load(rows: int = 20000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(int(seed))
    table = pd.DataFrame(rng.normal(size=(int(rows), 10)).round(4),
                         columns=[f"x{i}" for i in range(10)])
    table["label"] = rng.integers(0, 2, int(rows))
    return table
