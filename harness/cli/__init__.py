"""The `harness` command: a thin click shell over the library.

Each module here holds the commands of one concern; :mod:`.app` adds them to
``main``, :mod:`.options` gives them their shared options and :mod:`.output` prints
their results. The commands parse options, call the library and print. Errors the
user can fix (:class:`harness.errors.HarnessError`) become one line on stderr and
exit code 2, never a traceback.
"""

from .app import main  # noqa: F401  (the console script's entry point)
