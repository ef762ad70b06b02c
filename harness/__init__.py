"""harness: a Kaggle-style competition harness for teaching machine learning."""

__version__ = "0.1.0"
