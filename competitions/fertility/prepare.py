"""The fertility table: statsmodels' World Bank fertility rates, one row per country-year."""

import pandas as pd


def load(lags: int = 5) -> pd.DataFrame:
    """One row per (country, year) with the ``lags`` previous years' rates as features.

    Missing cells are handled by dropping: a row is kept only when its target and
    all its lags are known. Imputing would put invented values into features that
    the next rows' targets are compared against.
    """
    from statsmodels.datasets import fertility

    wide = fertility.load_pandas().data
    years = [c for c in wide.columns if c.isdigit()]
    long = wide.melt(id_vars=["Country Code"], value_vars=years, var_name="year",
                     value_name="fertility")
    long["year"] = long["year"].astype(int)
    long = long.sort_values(["Country Code", "year"]).reset_index(drop=True)
    by_country = long.groupby("Country Code")["fertility"]
    for k in range(1, lags + 1):
        long[f"lag_{k}"] = by_country.shift(k)
    long = long.dropna(subset=["fertility"] + [f"lag_{k}" for k in range(1, lags + 1)])
    onehot = pd.get_dummies(long["Country Code"], prefix="country", dtype="int64")
    table = pd.concat([onehot, long[["year"] + [f"lag_{k}" for k in range(1, lags + 1)]
                                    + ["fertility"]]], axis=1)
    return table.reset_index(drop=True)
