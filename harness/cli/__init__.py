"""The `harness` command: a thin click shell over the library.

Each module here holds the commands of one concern and adds them to ``main``;
the commands parse options, call the library and print. Errors the user can
fix (:class:`harness.errors.HarnessError`) become one line on stderr and exit
code 2, never a traceback.
"""

from .app import main  # noqa: F401  (the console script's entry point)

# each import registers its commands on `main`
from . import core  # noqa: F401,E402  prepare, score
from . import lab  # noqa: F401,E402  the `lab` group
