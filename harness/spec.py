"""competition.toml -> a validated, frozen :class:`Competition`.

All validation of a spec happens here, in :func:`parse_spec`; every error
names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomlkit
import tomlkit.exceptions
import tomlkit.items

from .errors import SpecError
from .metrics import METRICS, TASKS, Metric, get_metric
from .plugins import is_file_ref
from .rules import BOARDS, REVEAL_MODES

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SPLIT_PARTS = ("train", "validation", "public", "private")
PUBLIC_ORDERS = ("random", "time")


@dataclass(frozen=True)
class DataSpec:
    source: str | None          # "sklearn:digits", "prepare.py:load", ... or None with path
    path: str | None            # a CSV relative to the competition folder
    id_column: str
    target: str
    task: str
    options: dict = field(default_factory=dict)   # keyword arguments for a source function

    # An image competition's keys live on :class:`ImageDataSpec`; here they are class
    # attributes, not fields, so a table competition's asdict (its fingerprint) stays what
    # it was before image competitions existed.
    images = None                 # no image folder: a table competition
    image_size = None
    flip_safe = True


@dataclass(frozen=True)
class ImageDataSpec(DataSpec):
    """``[data]`` of an image competition: a labels table plus a folder of images.

    ``images`` is the folder (relative to competition.toml) or ``True`` when the source
    function generates the images (it is then called with ``image_dir=FOLDER`` to write
    them into). ``image_size`` is ``(height, width)`` or None (the first image's size).
    ``flip_safe``: whether a horizontal flip keeps an image's label (for augmentation).
    """

    images: str | bool = True
    image_size: tuple[int, int] | None = None
    flip_safe: bool = True


@dataclass(frozen=True)
class SplitSpec:
    train: float
    validation: float
    public: float
    private: float
    seed: int
    stratify: bool
    group_column: str
    order_column: str = ""         # cut the parts in this column's order (time), "" = shuffle
    public_order: str = "random"   # within the test part: "random" or "time" (public first)


@dataclass(frozen=True)
class ScoringSpec:
    metric: str
    public_decimals: int
    greater_is_better: bool | None = None   # only for a custom metric


@dataclass(frozen=True)
class RulesSpec:
    deadline: datetime | None
    daily_limit: int
    reset_timezone: str
    total_limit: int
    final_selections: int
    leaderboard: str
    ladder_step: float            # 0 = parameter-free Ladder
    max_upload_mb: float
    refusal_limit: int = 20       # refused files per team per REFUSAL_WINDOW; 0 = no limit
    reveal: str = "manual"        # manual (`harness reveal`) | at_deadline (by itself)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class Threshold:
    name: str
    public: float | None
    private: float | None
    points_public: float = 1.0
    points_private: float = 1.0


@dataclass(frozen=True)
class Competition:
    """A validated competition.toml. Build it with :func:`load_spec`."""

    slug: str
    title: str
    description: str
    data: DataSpec
    split: SplitSpec
    scoring: ScoringSpec
    rules: RulesSpec
    grading: tuple[Threshold, ...]
    folder: Path | None = None        # where competition.toml lives
    raw: str = ""                     # the file's text, for hashing and copying

    @property
    def metric(self) -> Metric:
        """The scoring metric; a custom metric file runs once per version of the file
        (harness.plugins caches it by path, mtime and size), not on every access."""
        return get_metric(self.scoring.metric, folder=self.folder,
                          greater_is_better=self.scoring.greater_is_better,
                          task=self.data.task)

    @property
    def is_classification(self) -> bool:
        return self.data.task in ("binary", "multiclass")

    def fingerprint(self) -> str:
        """A hash of what determines the prepared files: ``[data]`` (with options) and
        ``[split]``. Rules, scoring and grading can change without re-splitting."""
        split = asdict(self.split)
        if not self.split.order_column:
            # keys added in the second release: left out while unset, so a competition
            # prepared before keeps its fingerprint (and needs no --force)
            del split["order_column"], split["public_order"]
        data = asdict(self.data)
        data.pop("flip_safe", None)   # read by augmentation only: the files do not change
        canon = json.dumps([data, split], sort_keys=True, default=str)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def load_spec(path: str | Path, options: dict[str, Any] | None = None) -> Competition:
    """Read and validate a competition.toml (or the folder holding one).

    Parameters
    ----------
    path : str or Path
        ``competition.toml`` or its folder.
    options : dict, optional
        Overrides for ``[data.options]`` (e.g. ``{"rows": 1_000_000}``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "competition.toml"
    if not path.is_file():
        raise SpecError("file", f"no competition.toml at {path}; expected a file or a "
                        "folder holding one")
    text = path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("file", f"is not valid TOML: {exc}", source=path) from exc
    if options:
        # fingerprint() hashes the merged options, so overrides change it too
        doc.setdefault("data", {}).setdefault("options", {}).update(options)
    return parse_spec(doc, folder=path.parent, raw=text, source=path)


def set_rules(text: str, **values) -> str:
    """A competition.toml text with ``[rules]`` keys set (replaced or added), rest untouched.

    For tools that derive a competition from another (the demo moves the deadline
    a week ahead so it never depends on today's date). Comments, order and every
    other line stay byte for byte as they were.

    Raises
    ------
    SpecError
        When ``text`` is not valid TOML.
    """
    doc = toml_document(text)
    if "rules" not in doc:
        doc["rules"] = tomlkit.table()
    for key, value in values.items():
        set_toml_key(doc["rules"], key, value)
    return tomlkit.dumps(doc)


def toml_document(text: str, source=None) -> tomlkit.TOMLDocument:
    """competition.toml text as an editable document that writes back what it read.

    Edits go through this (not through text substitution) so that comments,
    key order and quoting survive; ``tomlkit.dumps(doc)`` gives the text back.

    Raises
    ------
    SpecError
        When ``text`` is not valid TOML.
    """
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise SpecError("file", f"is not valid TOML: {exc}", source) from exc


def set_toml_key(table: tomlkit.items.Table, key: str, value) -> None:
    """``table[key] = value`` in a :func:`toml_document`; a new key goes after the last key.

    tomlkit appends a new key after the comments that end a table, which usually
    introduce the next table (python-poetry/tomlkit#295), so a new key is put right
    after the table's last plain key instead (before its sub-tables, as TOML needs).
    """
    plain = [k for k, item in table.value.body
             if k is not None and not isinstance(item, (tomlkit.items.Table, tomlkit.items.AoT))]
    if key in table or not plain:
        table[key] = value
    else:
        table.value._insert_after(plain[-1], key, value)   # no public "insert after"


def _get(table: dict, key: str, prefix: str, kind, default=..., source=None):
    full = f"{prefix}.{key}" if prefix else key
    if key not in table:
        if default is ...:
            raise SpecError(full, "is missing", source)
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; a fraction written as `1` is fine, `true` is not
    if isinstance(value, bool) and bool not in kinds:
        raise SpecError(full, f"must be {_kind_name(kinds)}, found {value!r}", source)
    if not isinstance(value, kinds):
        raise SpecError(full, f"must be {_kind_name(kinds)}, found {value!r}", source)
    return value


def _kind_name(kinds) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a table", list: "a list", datetime: "a date-time"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _check_keys(table: dict, allowed: set, prefix: str, source) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(f"{prefix}.{key}" if prefix else key,
                            f"is not a known key; expected one of {', '.join(sorted(allowed))}",
                            source)


def parse_spec(doc: dict, *, folder: Path | None = None, raw: str = "", source=None) -> Competition:
    """Validate a parsed competition.toml. See :func:`load_spec`."""
    _check_keys(doc, {"slug", "title", "description", "data", "split", "scoring", "rules",
                      "grading"}, "", source)
    slug = _get(doc, "slug", "", str, source=source)
    if not SLUG_RE.match(slug):
        raise SpecError("slug", f"{slug!r} is not a valid slug; use lowercase letters, digits "
                        "and '-', starting with a letter or digit (e.g. 'digits-2026')", source)
    title = _get(doc, "title", "", str, slug, source)
    description = _get(doc, "description", "", str, "", source)

    data = _parse_data(_get(doc, "data", "", dict, source=source), source)
    split = _parse_split(_get(doc, "split", "", dict, {}, source), data, source)
    scoring = _parse_scoring(_get(doc, "scoring", "", dict, source=source), data, folder, source)
    rules = _parse_rules(_get(doc, "rules", "", dict, {}, source), scoring, source)
    grading = _parse_grading(_get(doc, "grading", "", dict, {}, source), source)
    return Competition(slug, title, description, data, split, scoring, rules, grading,
                       folder=folder, raw=raw)


def _parse_data(t: dict, source) -> DataSpec:
    _check_keys(t, {"source", "path", "id_column", "target", "task", "options", "images",
                    "image_size", "flip_safe"}, "data", source)
    src = _get(t, "source", "data", str, None, source)
    path = _get(t, "path", "data", str, None, source)
    if (src is None) == (path is None):
        raise SpecError("data", "needs exactly one of source = \"sklearn:digits\" (or "
                        "\"FILE.py:FUNCTION\") and path = \"my_table.csv\"", source)
    task = _get(t, "task", "data", str, source=source)
    if task not in TASKS:
        raise SpecError("data.task", f"{task!r} is not a task; expected one of "
                        f"{', '.join(TASKS)}", source)
    data = DataSpec(
        source=src, path=path,
        id_column=_get(t, "id_column", "data", str, "id", source),
        target=_get(t, "target", "data", str, source=source),
        task=task,
        options=dict(_get(t, "options", "data", dict, {}, source)),
    )
    return _parse_images(t, data, source)


IMAGE_FILE_COLUMN = "file"        # the released tables' column naming each image's file
IMAGE_SIZE_MAX = 4096


def _parse_images(t: dict, data: DataSpec, source) -> DataSpec:
    """``data`` as an :class:`ImageDataSpec` when ``[data] images`` is set, else as it is."""
    if "images" not in t:
        for key in ("image_size", "flip_safe"):
            if key in t:
                raise SpecError(f"data.{key}", "is for image competitions; add images = "
                                "\"FOLDER\" (the folder of images beside the labels table) "
                                "or remove it", source)
        return data
    images = _get(t, "images", "data", (str, bool), source=source)
    if images is False or images == "":
        raise SpecError("data.images", f"{images!r} names no folder; write images = "
                        "\"FOLDER\" (relative to competition.toml), or remove the key for a "
                        "table competition", source)
    generated = images is True
    if generated and not (data.source and is_file_ref(data.source)):
        raise SpecError("data.images", "images = true means a source function writes the "
                        "images; it needs source = \"FILE.py:FUNCTION\" (called with "
                        "image_dir=FOLDER), or write images = \"FOLDER\" for a folder of "
                        "images", source)
    if data.source and not is_file_ref(data.source):
        raise SpecError("data.images", f"source {data.source!r} is a table without images; "
                        "use path = \"labels.csv\" (or source = \"FILE.py:FUNCTION\") with "
                        "images = \"FOLDER\"", source)
    for key in (data.id_column, data.target):
        if key == IMAGE_FILE_COLUMN:
            which = "id_column" if key == data.id_column else "target"
            raise SpecError(f"data.{which}", f"{key!r} is the name the released tables give "
                            "each image's file; name the column otherwise", source)
    size = _get(t, "image_size", "data", list, None, source)
    if size is not None:
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                     and 1 <= v <= IMAGE_SIZE_MAX for v in size):
            raise SpecError("data.image_size", f"must be [HEIGHT, WIDTH] in pixels (whole "
                            f"numbers from 1 to {IMAGE_SIZE_MAX}), e.g. [32, 32]; found "
                            f"{size!r}", source)
        size = (size[0], size[1])
    return ImageDataSpec(**asdict(data), images=images, image_size=size,
                         flip_safe=_get(t, "flip_safe", "data", bool, True, source))


def _parse_split(t: dict, data: DataSpec, source) -> SplitSpec:
    _check_keys(t, set(SPLIT_PARTS) | {"seed", "stratify", "group_column", "order_column",
                                       "public_order"}, "split", source)
    defaults = {"train": 0.6, "validation": 0.1, "public": 0.15, "private": 0.15}
    fr = {}
    for part in SPLIT_PARTS:
        v = float(_get(t, part, "split", (int, float), defaults[part], source))
        if not 0 <= v <= 1:
            raise SpecError(f"split.{part}", f"must be a fraction in [0, 1], found {v}", source)
        fr[part] = v
    total = sum(fr.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise SpecError("split", "train + validation + public + private must sum to 1, found "
                        f"{' + '.join(f'{fr[p]:g}' for p in SPLIT_PARTS)} = {total:g}", source)
    for part in ("train", "public", "private"):
        if fr[part] == 0:
            raise SpecError(f"split.{part}", "must be above 0: a competition needs training "
                            "rows and both a public and a private test part", source)
    order = _get(t, "order_column", "split", str, "", source)
    stratify = _get(t, "stratify", "split", bool, data.task != "regression" and not order,
                    source)
    if stratify and data.task == "regression":
        raise SpecError("split.stratify", "cannot stratify a regression target; set "
                        "stratify = false (or use task = \"binary\"/\"multiclass\")", source)
    group = _get(t, "group_column", "split", str, "", source)
    if group and stratify:
        raise SpecError("split.group_column", f"group_column = {group!r} with stratify = true: "
                        "a split cannot both keep groups whole and stratify by class; set "
                        "stratify = false", source)
    public_order = _check_order(t, order, stratify, group, source)
    return SplitSpec(**fr, seed=_get(t, "seed", "split", int, 2026, source),
                     stratify=stratify, group_column=group, order_column=order,
                     public_order=public_order)


def _check_order(t: dict, order: str, stratify: bool, group: str, source) -> str:
    """``[split] public_order``, checked against the other ways of cutting the parts."""
    public_order = _get(t, "public_order", "split", str, "random", source)
    if public_order not in PUBLIC_ORDERS:
        raise SpecError("split.public_order", f"{public_order!r} is not an order; expected "
                        f"one of {', '.join(PUBLIC_ORDERS)}", source)
    if not order:
        if public_order == "time":
            raise SpecError("split.public_order", "public_order = \"time\" needs the column "
                            "to order rows by: add order_column = \"COL\" (a date or number "
                            "column)", source)
        return public_order
    if stratify:
        raise SpecError("split.order_column", f"order_column = {order!r} with stratify = true: "
                        "a split cut in time order cannot also stratify by class; set "
                        "stratify = false", source)
    if group:
        raise SpecError("split.order_column", f"order_column = {order!r} with group_column = "
                        f"{group!r}: a split cut in time order cannot also keep groups whole; "
                        "keep one of the two", source)
    return public_order


def _parse_scoring(t: dict, data: DataSpec, folder, source) -> ScoringSpec:
    _check_keys(t, {"metric", "public_decimals", "greater_is_better"}, "scoring", source)
    name = _get(t, "metric", "scoring", str, source=source)
    gib = _get(t, "greater_is_better", "scoring", bool, None, source)
    decimals = _get(t, "public_decimals", "scoring", int, 5, source)
    if not 0 <= decimals <= 12:
        raise SpecError("scoring.public_decimals", f"must be between 0 and 12, found {decimals}",
                        source)
    if name in METRICS:
        m = METRICS[name]
        if data.task not in m.tasks:
            fits = [k for k, v in METRICS.items() if data.task in v.tasks]
            raise SpecError("scoring.metric", f"{name!r} does not fit task {data.task!r}; "
                            f"for {data.task} use one of {', '.join(fits)}", source)
    else:
        get_metric(name, folder=folder, greater_is_better=gib, task=data.task)
    return ScoringSpec(name, decimals, gib)


def _parse_rules(t: dict, scoring: ScoringSpec, source) -> RulesSpec:
    _check_keys(t, {"deadline", "daily_limit", "reset_timezone", "total_limit",
                    "final_selections", "leaderboard", "ladder_step", "max_upload_mb",
                    "refusal_limit", "reveal"},
                "rules", source)
    deadline = _get(t, "deadline", "rules", (str, datetime), None, source)
    if isinstance(deadline, str):
        try:
            deadline = datetime.fromisoformat(deadline)
        except ValueError:
            raise SpecError("rules.deadline", f"{deadline!r} is not an ISO 8601 date-time; "
                            "expected e.g. \"2026-12-31T23:59:59+08:00\"", source) from None
    if deadline is not None and deadline.tzinfo is None:
        raise SpecError("rules.deadline", f"{deadline.isoformat()} has no time zone; add one, "
                        "e.g. \"2026-12-31T23:59:59+08:00\" or \"...Z\" for UTC", source)
    tz = _get(t, "reset_timezone", "rules", str, "UTC", source)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError("rules.reset_timezone", f"{tz!r} is not a time zone; expected an IANA "
                        "name such as \"UTC\" or \"Asia/Taipei\"", source) from None
    ints = {}
    for key, default, low in (("daily_limit", 5, 0), ("total_limit", 0, 0),
                              ("final_selections", 2, 1), ("refusal_limit", 20, 0)):
        v = _get(t, key, "rules", int, default, source)
        if v < low:
            raise SpecError(f"rules.{key}", f"must be {low} or more, found {v}", source)
        ints[key] = v
    board = _get(t, "leaderboard", "rules", str, "kaggle", source)
    if board not in BOARDS:
        raise SpecError("rules.leaderboard", f"{board!r} is not a leaderboard kind; expected "
                        f"one of {', '.join(BOARDS)}", source)
    step = float(_get(t, "ladder_step", "rules", (int, float), 0.0, source))
    if step < 0:
        raise SpecError("rules.ladder_step", f"must be 0 (parameter-free) or a positive step, "
                        f"found {step}", source)
    metric = METRICS.get(scoring.metric)
    if board == "ladder" and step == 0 and (metric is None or metric.row_loss is None):
        raise SpecError("rules.ladder_step", f"the parameter-free Ladder needs a per-row loss, "
                        f"which {scoring.metric!r} does not have; set ladder_step (e.g. 0.01)",
                        source)
    mb = float(_get(t, "max_upload_mb", "rules", (int, float), 50, source))
    if not 0 < mb <= 2048:
        raise SpecError("rules.max_upload_mb", f"must be in (0, 2048], found {mb}", source)
    reveal = _get(t, "reveal", "rules", str, "manual", source)
    if reveal not in REVEAL_MODES:
        raise SpecError("rules.reveal", f"{reveal!r} is not a way to reveal; expected "
                        f"{' or '.join(map(repr, REVEAL_MODES))}", source)
    if reveal == "at_deadline" and deadline is None:
        raise SpecError("rules.reveal", "\"at_deadline\" needs a deadline; set "
                        "[rules] deadline or use reveal = \"manual\"", source)
    return RulesSpec(deadline, ints["daily_limit"], tz, ints["total_limit"],
                     ints["final_selections"], board, step, mb, ints["refusal_limit"],
                     reveal)


def _parse_grading(t: dict, source) -> tuple[Threshold, ...]:
    out = []
    for name, row in t.items():
        key = f"grading.{name}"
        if not isinstance(row, dict):
            raise SpecError(key, f"must be a table like {{ public = 0.8, private = 0.8 }}, "
                            f"found {row!r}", source)
        _check_keys(row, {"public", "private", "points_public", "points_private"}, key, source)
        vals = {k: (float(_get(row, k, key, (int, float), None, source))
                    if k in row else None) for k in ("public", "private")}
        if vals["public"] is None and vals["private"] is None:
            raise SpecError(key, "needs a public or a private threshold (or both)", source)
        out.append(Threshold(
            name, vals["public"], vals["private"],
            float(_get(row, "points_public", key, (int, float), 1.0, source)),
            float(_get(row, "points_private", key, (int, float), 1.0, source))))
    return tuple(out)
