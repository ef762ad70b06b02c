"""harness: a Kaggle-style competition harness for teaching machine learning."""

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str):
    """``harness.Client`` (:class:`harness.notebook.Client`), imported on first use: pandas
    and the HTTP client load only then, so ``import harness`` and the commands stay quick."""
    if name == "Client":
        from .notebook import Client

        return Client
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
