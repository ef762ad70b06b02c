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
from . import teacher  # noqa: F401,E402  serve, team, close, reopen, reveal, rescore
from . import student  # noqa: F401,E402  login, competitions, download, submit, submissions, select, leaderboard
from . import lab_overfit  # noqa: F401,E402  lab overfit, attack, holdout-reuse
from . import demo  # noqa: F401,E402  demo
from . import lab_training  # noqa: F401,E402  lab diagnose, hessian, batch, optimizers
from . import baselines  # noqa: F401,E402  baseline, grades
from . import operations  # noqa: F401,E402  backup, restore, doctor, audit
