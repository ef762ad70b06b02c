"""The home folder a server owns, and the prepared competitions in it.

::

    HOME/
      harness.db                          the store (SQLite default)
      competitions/<slug>/
        competition.toml                  the spec as prepared (+ a custom metric file)
        manifest.json                     fingerprint, row counts, file hashes
        released/train.csv validation.csv test.csv sample_submission.csv
        released/train/ validation/ test/ an image competition's images (PNG), and
                 train.zip validation.zip test.zip   the same folders as served
        hidden/solution.csv               id, target, Usage (Public/Private)
        hidden/test_images.csv            an image competition's test ids -> original ids
      uploads/<slug>/<submission id>.csv  archived uploads

Only ``released/`` is ever served; ``hidden/`` is read by the scorer alone. The home
holds every private score and every team's predictions, so what the harness creates
in it is owner-only (folders 0700, files 0600) whatever the umask; `harness doctor`
reports anything other local users could read, and ``--fix`` tightens it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from .errors import PreparedError
from .spec import Competition, load_spec

TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<tid>\d+)\.tmp")  # temp_path's
RELEASED_FILES = ("train.csv", "validation.csv", "test.csv", "sample_submission.csv")
IMAGE_PARTS = ("train", "validation", "test")        # an image competition's image folders
IMAGE_ZIPS = tuple(f"{part}.zip" for part in IMAGE_PARTS)   # how the server delivers them
RELEASED_NAMES = RELEASED_FILES + IMAGE_ZIPS   # every name the server may ever serve
DEFAULT_HOME = ".harness"


def released_media_type(name: str) -> str:
    """The content type a released file is served with (a CSV or an image part's zip)."""
    return "application/zip" if name.endswith(".zip") else "text/csv"


def resolve_home(home: str | Path | None = None) -> Path:
    """``--home`` if given, else ``$HARNESS_HOME``, else ``./.harness``."""
    return Path(home or os.environ.get("HARNESS_HOME") or DEFAULT_HOME).resolve()


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and its missing parents as owner-only (0700) folders.

    Folders that already exist keep their mode (`harness doctor` reports loose ones).
    Safe when several threads or processes create the same folder at once.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    missing, folder = [], target
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)        # the umask can only remove bits from 0700
        except FileExistsError:
            if not folder.is_dir():
                raise
    return target


def temp_path(path: Path) -> Path:
    """Where this thread writes ``path`` before renaming it: ``.NAME.PID.TID.tmp`` beside it.

    The writer's process id in the name tells `harness doctor` whether a leftover
    temporary file may still be in use (see :data:`TEMP_NAME`).
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def private_file(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """Open ``path`` with ``os.open`` so that a file it creates is owner-only (0600).

    The mode is given at creation (no umask change, which would be process-wide and
    race with other threads); an existing file keeps its mode. Returns the descriptor.
    """
    return os.open(path, flags, 0o600)


def competitions_root() -> Path:
    """Where the built-in competitions live (``$HARNESS_COMPETITIONS`` or the repo's folder)."""
    env = os.environ.get("HARNESS_COMPETITIONS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "competitions"


def find_spec_path(slug_or_path: str) -> Path:
    """A built-in competition's slug, or a path to competition.toml or its folder."""
    p = Path(slug_or_path)
    if p.exists():
        return p
    builtin = competitions_root() / slug_or_path
    if builtin.is_dir():
        return builtin
    known = sorted(d.name for d in competitions_root().glob("*") if (d / "competition.toml").is_file())
    raise PreparedError(f"{slug_or_path!r} is neither a path nor a built-in competition; "
                        f"built-ins: {', '.join(known) or 'none found'}")


@dataclass(frozen=True)
class Prepared:
    """A prepared competition in a home: its spec, files and manifest."""

    spec: Competition
    directory: Path

    @property
    def released_dir(self) -> Path:
        return self.directory / "released"

    @property
    def solution_path(self) -> Path:
        return self.directory / "hidden" / "solution.csv"

    @cached_property
    def manifest(self) -> dict:
        return json.loads((self.directory / "manifest.json").read_text())

    def released(self, name: str) -> pd.DataFrame:
        """One released file as a DataFrame (``train``, ``validation``, ``test``, ...)."""
        return pd.read_csv(self.released_dir / f"{name.removesuffix('.csv')}.csv")

    @cached_property
    def train(self) -> pd.DataFrame:
        return self.released("train")

    @cached_property
    def validation(self) -> pd.DataFrame:
        return self.released("validation")

    @cached_property
    def test(self) -> pd.DataFrame:
        return self.released("test")

    @property
    def prepare_command(self) -> str:
        """The command that prepares this competition again: by its slug for a built-in,
        else by the folder it was prepared from (a teacher's own slug is no path)."""
        source = self.manifest.get("source")
        builtin = (competitions_root() / self.spec.slug / "competition.toml").is_file()
        target = self.spec.slug if builtin or not source else source
        return f"harness prepare {target} --force"

    @property
    def is_image(self) -> bool:
        """True for an image competition (``[data] images`` set)."""
        return bool(self.spec.data.images)

    def image_dir(self, part: str) -> Path:
        """The released folder of one part's images (``train``, ``validation`` or ``test``);
        the ``file`` column of that part's CSV names the files in it.

        Raises
        ------
        PreparedError
            When this is not an image competition.
        ValueError
            When ``part`` is not one of :data:`IMAGE_PARTS`.
        """
        if not self.is_image:
            raise PreparedError(f"{self.spec.slug!r} is a table competition: it has no image "
                                "folders")
        if part not in IMAGE_PARTS:
            raise ValueError(f"no image part {part!r}; expected one of {', '.join(IMAGE_PARTS)}")
        return self.released_dir / part

    @property
    def released_names(self) -> tuple[str, ...]:
        """The names the server serves for this competition: the CSVs, plus one zip per
        image folder for an image competition."""
        return RELEASED_FILES + (IMAGE_ZIPS if self.is_image else ())

    @property
    def feature_columns(self) -> list[str]:
        return list(self.manifest["feature_columns"])

    @property
    def classes(self) -> list | None:
        return self.manifest.get("classes")


def competition_dir(home: Path, slug: str) -> Path:
    return Path(home) / "competitions" / slug


def load_prepared(home: str | Path, slug: str) -> Prepared:
    """The prepared competition ``slug`` in ``home``.

    Raises
    ------
    PreparedError
        When it was never prepared there.
    """
    home = resolve_home(home)
    d = competition_dir(home, slug)
    if not (d / "manifest.json").is_file():
        there = list_prepared(home)
        raise PreparedError(f"competition {slug!r} is not prepared in {home}; run "
                            f"`harness prepare {slug}` first (a built-in) or `harness prepare "
                            "FOLDER` (your own competition's folder)"
                            + (f" (prepared: {', '.join(there)})" if there else ""))
    options = json.loads((d / "manifest.json").read_text()).get("options") or None
    return Prepared(load_spec(d / "competition.toml", options), d)


def list_prepared(home: str | Path) -> list[str]:
    root = Path(home) / "competitions"
    return sorted(p.parent.name for p in root.glob("*/manifest.json"))
