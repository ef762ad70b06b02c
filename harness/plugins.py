"""Load a teacher's ``FILE.py:FUNCTION`` from a competition folder.

Two places in competition.toml name such a function: ``[data] source`` (a
function returning the labeled table) and ``[scoring] metric`` (a custom
metric). Both load through :func:`load_function`, which executes a file once
and again only when the file changes, so a service that reads the spec on
every request does not re-run the teacher's code each time.
"""

from __future__ import annotations

import importlib.util
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Callable

from .errors import SpecError

# resolved path -> ((mtime_ns, size), module); one entry per file, replaced when it changes
_MODULES: dict[Path, tuple[tuple[int, int], ModuleType]] = {}
_LOCK = threading.Lock()   # the service's worker threads must not execute a file twice


def is_file_ref(ref: str) -> bool:
    """True when ``ref`` has the form ``FILE.py:FUNCTION``."""
    file, colon, _ = ref.partition(":")
    return bool(colon) and file.endswith(".py")


def load_function(ref: str, folder: Path | None, *, key: str, expects: str) -> Callable:
    """The function ``FUNCTION`` of ``FILE.py`` in the competition folder.

    The file is executed on first use and again only when its modification
    time or size changes (a teacher editing it is picked up).

    Parameters
    ----------
    ref : str
        ``"FILE.py:FUNCTION"``, the file relative to ``folder``.
    folder : Path or None
        The competition folder (where competition.toml lives).
    key : str
        The competition.toml key that names ``ref``, for error messages
        (e.g. ``"scoring.metric"``).
    expects : str
        What the function should look like, for error messages
        (e.g. ``"f(y_true, y_pred) -> float"``).

    Raises
    ------
    SpecError
        When ``ref`` is malformed, the file is missing, not a ``.py`` file or
        fails to execute (naming the line), or lacks a callable ``FUNCTION``.
    """
    file, colon, func_name = ref.partition(":")
    if not colon or not func_name.isidentifier():
        raise SpecError(key, f"{ref!r} is not 'FILE.py:FUNCTION'; expected a Python file in "
                        f"the competition folder and the name of a function {expects} in it")
    if not file.endswith(".py"):
        raise SpecError(key, f"{file!r} is not a Python file; expected 'FILE.py:FUNCTION' "
                        "naming a .py file beside competition.toml")
    if folder is None:
        raise SpecError(key, f"{ref!r} needs the competition folder to find {file}")
    path = (Path(folder) / file).resolve()
    if not path.is_file():
        raise SpecError(key, f"file {file!r} not found in {folder}; put the Python file "
                        "beside competition.toml")
    module = _module(path, file, key)
    if not hasattr(module, func_name):
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        found = f"it defines {', '.join(defined)}" if defined else "it defines no function"
        raise SpecError(key, f"{file} has no function {func_name!r} ({found}); expected "
                        f"{func_name}, a function {expects}")
    func = getattr(module, func_name)
    if not callable(func):
        raise SpecError(key, f"{file}: {func_name!r} is a {type(func).__name__}, not a "
                        f"function; expected a function {expects}")
    return func


def _module(path: Path, file: str, key: str) -> ModuleType:
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        cached = _MODULES.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        spec = importlib.util.spec_from_file_location(f"harness_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the teacher's file: say where it failed and why
            raise SpecError(key, f"could not load {file}: {_failure(exc, path, file)}; "
                            f"expected a file that runs with `python {file}`") from exc
        _MODULES[path] = (stamp, module)
        return module


def _failure(exc: Exception, path: Path, file: str) -> str:
    """``exc`` located in the teacher's file, without server paths or a stack trace."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        # str(SyntaxError) holds the absolute path; msg and lineno do not
        return f"{type(exc).__name__} at {file} line {exc.lineno}: {exc.msg}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
             if f.filename == str(path)]
    where = f" at {file} line {lines[-1]}" if lines else ""
    return f"{type(exc).__name__}{where}: {exc}"
