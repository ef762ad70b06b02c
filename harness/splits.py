"""Split a labeled table into train / validation / public / private and write the release.

The split is a pure function of the table and ``[split]`` (fractions, seed,
stratify, group_column, order_column, public_order): :func:`assign_parts`.
:func:`prepare` writes the released files and the answer key into the home, byte
for byte the same for the same spec, and refuses to overwrite a competition
prepared from another spec unless forced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import tomlkit

from . import __version__, images
from .datasets import load_table
from .errors import DataError, HarnessError, PreparedError, SpecError
from .home import Prepared, competition_dir, load_prepared, private_dir, resolve_home
from .spec import Competition, load_spec, set_toml_key, toml_document

TRAIN, VALIDATION, PUBLIC, PRIVATE = range(4)


def _counts(n: int, fractions: list[float]) -> np.ndarray:
    """Split ``n`` items by ``fractions`` with the largest-remainder rule (sums to n)."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(np.int64)
    short = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def assign_parts(table: pd.DataFrame, spec: Competition) -> np.ndarray:
    """The part of each row: 0 train, 1 validation, 2 public, 3 private.

    Deterministic for ``[split] seed``. Stratified by the target when
    ``stratify`` (each class is split by the fractions); with ``group_column``,
    rows sharing a group land in one part, and the parts get about their
    fraction of rows. With ``order_column``, see :func:`ordered_parts`.
    """
    s = spec.split
    fractions = [s.train, s.validation, s.public, s.private]
    rng = np.random.default_rng(s.seed)
    if s.order_column:
        return ordered_parts(order_values(table, s.order_column), fractions,
                             public_order=s.public_order, rng=rng, column=s.order_column)
    n = len(table)
    parts = np.empty(n, dtype=np.int8)
    if s.group_column:
        codes, uniques = pd.factorize(table[s.group_column], sort=True)
        order = rng.permutation(len(uniques))
        sizes = np.bincount(codes, minlength=len(uniques))[order]
        # a group goes to the part its cumulative midpoint falls in
        mid = (np.cumsum(sizes) - sizes / 2) / n
        bounds = np.cumsum(fractions)[:-1]
        group_part = np.empty(len(uniques), dtype=np.int8)
        group_part[order] = np.searchsorted(bounds, mid, side="right")
        parts[:] = group_part[codes]
    elif s.stratify:
        y = table[spec.data.target].to_numpy()
        for cls in np.unique(y):
            idx = np.flatnonzero(y == cls)
            idx = idx[rng.permutation(len(idx))]
            parts[idx] = np.repeat(np.arange(4), _counts(len(idx), fractions))
    else:
        idx = rng.permutation(n)
        parts[idx] = np.repeat(np.arange(4), _counts(n, fractions))
    return parts


def order_values(table: pd.DataFrame, column: str) -> np.ndarray:
    """The ``[split] order_column`` of ``table`` as sortable values: numbers or dates.

    Numbers are kept; dates (a datetime column, or text in ISO 8601 such as
    ``2024-03-01`` or ``2024-03-01T08:30:00+08:00``) become UTC instants.

    Raises
    ------
    SpecError
        When the column does not exist.
    DataError
        When a cell is empty or the values are neither numbers nor dates.
    """
    if column not in table.columns:
        found = ", ".join(repr(c) for c in table.columns[:8])
        more = f" and {len(table.columns) - 8} more" if len(table.columns) > 8 else ""
        raise SpecError("split.order_column", f"{column!r} is not a column of the table; "
                        f"found {found}{more}")
    values = table[column]
    empty = values.isna().to_numpy()
    if empty.any():
        count = int(empty.sum())
        raise DataError(f"order column {column!r} has {count} empty cell{'s' * (count > 1)} "
                        f"(the first in row {int(np.argmax(empty)) + 1}); every row needs a "
                        "date or number to be placed in time: fill them or drop those rows")
    kind = values.dtype.kind
    if kind in "iuf":
        return values.to_numpy()
    if kind != "b":
        try:
            # strict ISO 8601: a guessed format could read 03/04 as March or April
            dates = pd.to_datetime(values, format="ISO8601", utc=True)
        except (ValueError, TypeError, OverflowError):
            pass
        else:
            return dates.dt.tz_localize(None).to_numpy()
    bad = _plain(values.iloc[_first_unparsed(values)] if kind != "b" else values.iloc[0])
    raise DataError(f"order column {column!r} holds {bad!r} ({values.dtype} values), which "
                    "cannot be ordered in time; expected numbers (e.g. a day index) or dates "
                    "in ISO 8601 (e.g. 2024-03-01 or 2024-03-01T08:30:00+08:00)")


def _first_unparsed(values: pd.Series) -> int:
    """The position of the first value that is not an ISO 8601 date (0 if none stands out)."""
    try:
        dates = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return 0
    bad = dates.isna().to_numpy()     # no cell is empty here, so NaT means "not a date"
    return int(np.argmax(bad)) if bad.any() else 0


def ordered_parts(values: np.ndarray, fractions: list[float], *, public_order: str,
                  rng: np.random.Generator, column: str = "order column") -> np.ndarray:
    """Parts cut in the order of ``values``: train earliest, then validation, then test.

    Rows sharing a value (a tie) stay in one part, the part their cumulative midpoint
    falls in, so no training row is later than a test row and a tie never depends on
    the table's row order. Within the test part, public and private rows are drawn
    at random (``public_order = "random"``) or cut in time too, public first
    (``"time"``, as in a forecasting competition).

    Raises
    ------
    DataError
        When the column has too few distinct values to give every part rows.
    """
    n = len(values)
    codes, uniques = pd.factorize(values, sort=True)
    sizes = np.bincount(codes, minlength=len(uniques))
    mid = (np.cumsum(sizes) - sizes / 2) / n
    if public_order == "time":
        bounds = np.cumsum(fractions)[:-1]
    else:                   # three segments in time: train, validation, the whole test part
        bounds = np.cumsum(fractions)[:2]
    parts = np.searchsorted(bounds, mid, side="right").astype(np.int8)[codes]
    if public_order != "time":
        test = np.flatnonzero(parts == PUBLIC)
        test = test[rng.permutation(len(test))]
        share = fractions[PUBLIC] / (fractions[PUBLIC] + fractions[PRIVATE])
        parts[test] = np.repeat([PUBLIC, PRIVATE], _counts(len(test), [share, 1 - share]))
    names = ("train", "validation", "public", "private")
    empty = [names[p] for p in range(4)
             if fractions[p] > 0 and not np.any(parts == p)]
    if empty:
        raise DataError(f"order column {column!r} has {len(uniques)} distinct values for {n} "
                        f"rows, too few to give the {' and '.join(empty)} part rows (rows "
                        "sharing a value stay in one part); order by a finer column (a full "
                        "date rather than a year)" + ("" if public_order != "time" else
                                                     " or set public_order = \"random\""))
    return parts


def build_release(table: pd.DataFrame, spec: Competition,
                  features: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The released tables and the answer key, in memory.

    Returns ``train``, ``validation``, ``test``, ``sample_submission`` and
    ``solution``. test and solution share one order, a seeded shuffle of the
    public and private rows together, so the order says nothing of membership.
    ``features`` are the released columns besides the id and the target (default:
    every other column of ``table``; an image competition releases ``file`` only).
    """
    d = spec.data
    parts = assign_parts(table, spec)
    rng = np.random.default_rng([spec.split.seed, 1])
    test_idx = np.flatnonzero(parts >= PUBLIC)
    test_idx = test_idx[rng.permutation(len(test_idx))]
    if features is None:
        features = [c for c in table.columns if c not in (d.id_column, d.target)]

    train = table.iloc[np.flatnonzero(parts == TRAIN)]
    validation = table.iloc[np.flatnonzero(parts == VALIDATION)]
    test = table.iloc[test_idx]
    ids = test[d.id_column].to_numpy()
    y_train = train[d.target]
    if spec.metric.needs_proba:
        default = round(float(y_train.mean()), 6)      # the prior of class 1
    elif spec.is_classification:
        default = y_train.mode().sort_values().iloc[0]  # the most frequent class
    else:
        default = round(float(y_train.mean()), 6)
    usage = np.where(parts[test_idx] == PUBLIC, "Public", "Private")
    return {
        "train": train[[d.id_column, *features, d.target]],
        "validation": validation[[d.id_column, *features, d.target]],
        "test": test[[d.id_column, *features]],
        "sample_submission": pd.DataFrame({d.id_column: ids, d.target: [default] * len(ids)}),
        "solution": pd.DataFrame({d.id_column: ids, d.target: test[d.target].to_numpy(),
                                  "Usage": usage}),
    }


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV deterministically (same frame -> same bytes), fast for millions of rows."""
    tbl = pa.Table.from_pandas(frame, preserve_index=False)
    # pyarrow quotes every header name; a plain header is what students expect to see
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(frame.columns)
    with open(path, "wb") as f:
        f.write(buf.getvalue().encode())
        pacsv.write_csv(tbl, f, pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare(spec_path: str | Path, home: str | Path | None = None, *,
            options: dict | None = None, force: bool = False,
            progress: images.Progress = images.terminal_bar) -> Prepared:
    """Build the splits and write the released files and answer key into the home.

    An image competition also gets its image folders and their zips (see
    :mod:`harness.images`), and ``hidden/test_images.csv`` (each re-issued test id's
    original id and file, for the teacher).

    Parameters
    ----------
    spec_path : str or Path
        competition.toml or its folder.
    home : str or Path, optional
        The home (see :func:`harness.home.resolve_home`).
    options : dict, optional
        Overrides for ``[data.options]``.
    force : bool
        Replace a competition prepared from a different spec.
    progress : callable
        ``progress(iterable, desc)`` wraps the loops over images (default: a bar on a
        terminal, nothing otherwise).

    Raises
    ------
    PreparedError
        When the competition was prepared from another spec and not ``force``.
    """
    spec = load_spec(spec_path, options)
    home = resolve_home(home)
    target = competition_dir(home, spec.slug)
    old_manifest = target / "manifest.json"
    if old_manifest.is_file() and not force:
        old = json.loads(old_manifest.read_text())
        if old.get("fingerprint") != spec.fingerprint():
            raise PreparedError(
                f"{spec.slug!r} is already prepared in {home} from a different spec; the "
                "released files would change under the students. Re-run with --force to "
                "replace them (scores already given stay as they were; `harness rescore` "
                "recomputes them)")

    # generated images are written beside the competition (the home has room for them)
    with images.image_folder(spec, private_dir(target.parent)) as image_folder:
        table = load_table(spec, image_folder)
        if image_folder is None:
            release, image_release = build_release(table, spec), None
        else:
            # every image is found and checked before anything is written
            table = images.attach_files(table, spec, image_folder)
            image_format = images.check_images(image_folder, table[images.FILE], spec,
                                               progress)
            release = build_release(table, spec, features=[images.FILE])
            sources, release["test_images"] = images.issue_names(release, spec)
            image_release = images.ImageRelease(image_folder, image_format, sources)
        return _write_prepared(spec, home, target, table, release, image_release, progress)


HIDDEN = ("solution", "test_images")      # written under hidden/, never served


def _write_prepared(spec: Competition, home: Path, target: Path, table: pd.DataFrame,
                    release: dict[str, pd.DataFrame],
                    image_release: images.ImageRelease | None, progress) -> Prepared:
    """Write the release (and an image competition's images) and swap it in."""
    # write everything into a temporary folder, then swap it in: never half-written
    private_dir(target.parent)        # the home and competitions/: owner-only (answer keys)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.slug}-", dir=target.parent))
    try:
        (tmp / "released").mkdir()
        (tmp / "hidden").mkdir()
        files = {}
        for name, frame in release.items():
            sub = "hidden" if name in HIDDEN else "released"
            path = tmp / sub / f"{name}.csv"
            write_csv(frame, path)
            files[f"{sub}/{name}.csv"] = _sha256(path)
        if image_release is not None:
            for zip_path in image_release.write(tmp / "released", progress):
                files[f"released/{zip_path.name}"] = _sha256(zip_path)
        source_toml = Path(spec.folder, "competition.toml").read_text() if spec.folder \
            else spec.raw
        (tmp / "competition.toml").write_text(
            _keep_recorded_grading(source_toml, target / "competition.toml"))
        if spec.folder:
            for py in spec.folder.glob("*.py"):   # a custom metric or source travels along
                shutil.copy2(py, tmp / py.name)
        parts_n = {p: len(release[p]) for p in ("train", "validation")}
        usage = release["solution"]["Usage"]
        parts_n |= {"public": int((usage == "Public").sum()),
                    "private": int((usage == "Private").sum())}
        y = table[spec.data.target]
        classes = sorted(pd.unique(y).tolist()) if spec.is_classification else None
        manifest = {
            "slug": spec.slug,
            "fingerprint": spec.fingerprint(),
            "options": spec.data.options,
            "harness_version": __version__,
            "rows": parts_n,
            "id_column": spec.data.id_column,
            "target": spec.data.target,
            "id_kind": "int" if table[spec.data.id_column].dtype.kind in "iu" else "str",
            "feature_columns": [c for c in release["test"].columns if c != spec.data.id_column],
            "classes": [_plain(c) for c in classes] if classes is not None else None,
            "files": files,
            # where it came from, so advice can name the command that prepares it again
            "source": str(Path(spec.folder).resolve()) if spec.folder else None,
        }
        if image_release is not None:
            shape = image_release.format
            manifest["image"] = {"height": shape.height, "width": shape.width,
                                 "channels": shape.channels}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            old_dir = target.with_name(f".{spec.slug}-old")
            shutil.rmtree(old_dir, ignore_errors=True)
            target.rename(old_dir)
            tmp.rename(target)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_prepared(home, spec.slug)


def _keep_recorded_grading(source: str, home_copy: Path) -> str:
    """``source`` with the ``[grading]`` thresholds the home's copy has and it lacks
    (recorded there by ``harness baseline --record``), so preparing again keeps them; a
    threshold the source names itself is the source's."""
    try:
        old = toml_document(home_copy.read_text(encoding="utf-8"))
    except (OSError, HarnessError):
        return source
    recorded = old.get("grading") or {}
    doc = toml_document(source)
    grading = doc.get("grading")
    missing = [name for name in recorded if grading is None or name not in grading]
    if not missing:
        return source
    if grading is None:
        doc["grading"] = grading = tomlkit.table()
        grading.comment("recorded by `harness baseline --record`, kept by `harness prepare`")
    for name in missing:
        set_toml_key(grading, name, recorded[name])
    return tomlkit.dumps(doc)


def _plain(value):
    """numpy scalars -> Python scalars for JSON."""
    return value.item() if hasattr(value, "item") else value
