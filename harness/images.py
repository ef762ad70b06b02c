"""Image competitions: a labels table and a folder of images in, PNG folders and zips out.

``[data] images = "FOLDER"`` (:class:`harness.spec.ImageDataSpec`) names the folder holding
one image per row of the labels table: ``<id>.png``, ``<id>.jpg`` or ``<id>.jpeg``, or the
file the table's ``file`` column names (relative to the folder). With ``images = true`` the
source function writes them into a temporary folder (:func:`image_folder`), and from
there they take the same path. :func:`harness.splits.prepare` splits the table as for any
competition; this module then

- finds and checks every image before anything is written (:func:`attach_files`,
  :func:`check_images`): a missing, unreadable or odd-sized image, or one that is neither
  PNG nor JPEG, is refused naming the file;
- names the released images (:func:`issue_names`): ``<id>.png`` for train and validation;
  the test rows get new ids (their position in the shuffled test order), so neither a
  test image's name nor its id says anything of its label, of its place in the teacher's
  table or of whether it is public or private;
- writes each part as a folder of PNGs decoded and saved afresh (no metadata survives:
  no EXIF, no text chunks, no colour profile), one image in memory at a time, and the
  same images as one zip per part, the same bytes for the same images (:func:`write_part`);
- draws the strip of example training images the competition page shows
  (:func:`example_strip`).

Pure core: Pillow and numpy only.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import DataError, SpecError
from .spec import IMAGE_FILE_COLUMN as FILE
from .spec import Competition

SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")   # tried for <id> in this order
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG"}   # MPO: a camera's multi-frame JPEG
GREY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
ORIENTATION = 0x0112                       # the EXIF tag a phone sets instead of rotating
SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")   # an id that can name a file
ZIP_TIME = (1980, 1, 1, 0, 0, 0)           # every zip entry's date: same images, same bytes
PNG_LEVEL = 6                              # zlib level of the released PNGs (fixed: same bytes)
SHOWN = 3                                  # examples of one problem quoted in an error
TEST_PREFIX = "test-"                      # re-issued test ids when the ids are text

Progress = Callable[[Iterable, str], Iterable]


def terminal_bar(iterable: Iterable, desc: str | None = None) -> Iterable:
    """A tqdm bar on stderr, shown only when stderr is a terminal (``harness prepare`` run
    by hand); silent in pipes, notebooks and tests."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr, disable=None, unit="img")


@dataclass(frozen=True)
class ImageFormat:
    """What every released image of a competition is: ``height`` x ``width`` pixels in
    ``mode`` (``"L"`` when every source image is grey-scale, else ``"RGB"``)."""

    height: int
    width: int
    mode: str

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3


@contextmanager
def image_folder(spec: Competition, scratch: Path | None = None) -> Iterator[Path | None]:
    """The folder a competition's images are read from, for the duration of a prepare.

    None for a table competition; ``[data] images`` beside competition.toml; for
    ``images = true`` a fresh temporary folder in ``scratch`` (the system's temporary
    folder if None) that the source function writes into, removed afterwards.

    Raises
    ------
    SpecError
        When the folder ``[data] images`` names does not exist.
    """
    images = spec.data.images
    if not images:
        yield None
    elif images is True:
        with tempfile.TemporaryDirectory(prefix=f".{spec.slug}-images-", dir=scratch) as tmp:
            yield Path(tmp)
    else:
        folder = Path(spec.folder or ".") / images
        if not folder.is_dir():
            raise SpecError("data.images", f"folder {images!r} not found next to "
                            f"competition.toml ({spec.folder}); put the images there or fix "
                            "the path (relative to competition.toml)")
        yield folder


# ------------------------------------------------------------------ finding the images


def attach_files(table: pd.DataFrame, spec: Competition, folder: Path) -> pd.DataFrame:
    """``table`` with its ``file`` column: each row's image, relative to ``folder``.

    A ``file`` column of the table is checked (every row names an existing image of its
    own inside the folder); without one, each row's image is ``<id>.png``, ``.jpg`` or
    ``.jpeg``.

    Raises
    ------
    DataError
        When an id cannot name a file, an image is missing, a row names no file or a
        file outside the folder, two rows name one image, or an id has two images.
    """
    ids = table[spec.data.id_column]
    if ids.dtype.kind not in "iu":
        bad = ~ids.astype(str).str.fullmatch(SAFE_ID)
        if bad.any():
            raise DataError(f"id {ids[bad].iloc[0]!r} cannot name an image file: the released "
                            "training images are named <id>.png, so the ids of an image "
                            "competition hold letters, digits, '.', '-' and '_' only (and "
                            f"start with a letter, digit or '_'); {int(bad.sum())} ids do "
                            "not: rename them in the labels table")
    if FILE in table.columns:
        files = _listed_files(table[FILE], folder)
    else:
        files = _files_by_id(ids, folder)
    return table.assign(**{FILE: files})


def _files_by_id(ids: pd.Series, folder: Path) -> pd.Series:
    """``<id>.png|.jpg|.jpeg`` for each id: the one file of that name in ``folder``."""
    present = {e.name for e in os.scandir(folder) if e.is_file()}
    text = ids.astype(str)
    found = pd.Series(None, index=ids.index, dtype=object)
    hits = np.zeros(len(ids), dtype=np.int64)
    for suffix in SUFFIXES:
        candidate = text + suffix
        hit = candidate.isin(present).to_numpy()
        found = found.where(~hit | found.notna().to_numpy(), candidate)
        hits += hit
    if (hits > 1).any():
        twice = text[hits > 1].iloc[0]
        names = [twice + s for s in SUFFIXES if twice + s in present]
        raise DataError(f"id {twice!r} has {len(names)} images in {folder} "
                        f"({', '.join(names)}); keep one, or name each row's image in a "
                        f"{FILE!r} column of the labels table")
    missing = text[hits == 0]
    if len(missing):
        shown = ", ".join(f"{i}.png" for i in missing.head(SHOWN))
        raise DataError(f"{len(missing)} image{'s are' if len(missing) > 1 else ' is'} "
                        f"missing from {folder}: no {shown} (nor .jpg, .jpeg)"
                        f"{' ...' if len(missing) > SHOWN else ''}; each row's image is "
                        f"named by its id (<id>.png, .jpg or .jpeg), or add a {FILE!r} column "
                        "naming it, or drop the row")
    return found


def _listed_files(column: pd.Series, folder: Path) -> pd.Series:
    """The ``file`` column checked: relative paths inside ``folder``, each an image there."""
    empty = column.isna() | (column.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.argmax(empty.to_numpy())) + 2        # + header, counted from 1
        more = int(empty.sum()) - 1
        raise DataError(f"the labels table's {FILE!r} column is empty in line {row}"
                        f"{f' (and {more} more)' if more else ''}; every row needs its "
                        "image's file")
    # a table written on Windows may use backslashes; the released names are POSIX paths
    files = column.astype(str).str.replace("\\", "/", regex=False)
    for name in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts:
            raise DataError(f"the labels table names the image {name!r}, outside the image "
                            f"folder {folder}; name files relative to it (e.g. "
                            "'cats/001.jpg')")
    twice = files[files.duplicated()]
    if len(twice):
        rows = int((files == twice.iloc[0]).sum())
        raise DataError(f"the image {twice.iloc[0]!r} is named by {rows} rows of the labels "
                        "table; one image belongs to one row (a shared image could land in "
                        "train and test at once)")
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{len(missing)} image{'s are' if len(missing) > 1 else ' is'} "
                        f"missing from {folder}: {', '.join(map(repr, missing[:SHOWN]))}"
                        f"{' ...' if len(missing) > SHOWN else ''}; fix the {FILE!r} column "
                        "or drop those rows")
    return files


# ------------------------------------------------------------------ checking and encoding


def check_images(folder: Path, files: Iterable[str], spec: Competition,
                 progress: Progress = terminal_bar) -> ImageFormat:
    """Read every image's header (not its pixels) and return the released format.

    The size is ``[data] image_size`` or, unset, the first image's; every image must have
    it. The mode is grey-scale (``L``) when every image is, else ``RGB``.

    Raises
    ------
    DataError
        Naming the first image that is unreadable, neither PNG nor JPEG, or of another size.
    """
    expected, first, grey = spec.data.image_size, None, True
    for name in progress(files, "checking images"):
        height, width, mode = _header(folder / name)
        if expected is None:
            expected, first = (height, width), name
        elif (height, width) != expected:
            like = (f"like {first!r}, the first image" if first else
                    "[data] image_size in competition.toml")
            raise DataError(f"image {str(folder / name)!r} is {height}x{width} pixels (height x "
                            f"width); every image must be {expected[0]}x{expected[1]} ({like}): "
                            "resize it, or drop its row from the labels table")
        grey = grey and mode in GREY_MODES
    if expected is None:
        raise DataError(f"no images to check in {folder}")
    return ImageFormat(expected[0], expected[1], "L" if grey else "RGB")


def _unreadable(path: Path, exc: BaseException) -> DataError:
    return DataError(f"image {str(path)!r} cannot be read as a PNG or JPEG image ({exc}); "
                     "replace it with a valid file, or drop its row from the labels table")


def _header(path: Path) -> tuple[int, int, str]:
    """(height, width, mode) of the image as shown (a phone's EXIF rotation applied)."""
    try:
        with Image.open(path) as im:
            kind = FORMATS.get(im.format)
            if kind is None:
                raise DataError(f"image {str(path)!r} is a {im.format} file; image "
                                "competitions take PNG and JPEG: convert it")
            width, height = im.size
            if im.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):    # turned a quarter
                width, height = height, width
            return height, width, im.mode
    except FileNotFoundError:
        raise DataError(f"image {str(path)!r} is missing; put it back, or drop its row from "
                        "the labels table") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None


def encode_png(path: Path, fmt: ImageFormat) -> bytes:
    """The image at ``path`` as a fresh PNG in ``fmt.mode``: its pixels and nothing else.

    Decoding the whole image here (not only its header) is what finds a corrupt or
    truncated file. Saved from a new image built from the pixels, so no EXIF, text,
    colour profile or transparency setting of the source reaches the PNG.

    Raises
    ------
    DataError
        When the image is corrupt or truncated, or its size is not ``fmt``'s.
    """
    try:
        with Image.open(path) as im:
            im.load()
            shown = ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None
    if shown.mode.startswith("I;16"):     # 16-bit grey: keep the top 8 bits, not a clip
        shown = Image.fromarray((np.asarray(shown, dtype=np.uint16) >> 8).astype(np.uint8))
    pixels = shown if shown.mode == fmt.mode else shown.convert(fmt.mode)
    if pixels.size != (fmt.width, fmt.height):
        raise DataError(f"image {str(path)!r} decodes to {pixels.height}x{pixels.width} "
                        f"pixels, not the {fmt.height}x{fmt.width} its header promised; "
                        "replace it with a valid file")
    clean = Image.frombytes(fmt.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


# ------------------------------------------------------------------ naming and writing


def issue_names(release: dict[str, pd.DataFrame], spec: Competition
                ) -> tuple[dict[str, list[tuple[str, str]]], pd.DataFrame]:
    """Give the released images their names, in place in ``release``.

    ``release`` comes from :func:`harness.splits.build_release` with the feature ``file``
    holding each row's source image. Train and validation images become ``<id>.png``.
    The test rows get new ids, in the released (shuffled) test order: after the largest
    id for whole-number ids, ``test-0001``, ... for text ids; test.csv,
    sample_submission.csv and the answer key are changed alike.

    Returns
    -------
    sources : dict
        Per part, ``(released name, source file)`` pairs sorted by name.
    origins : DataFrame
        For the teacher (hidden): each new test id, its original id and source file.
    """
    id_col = spec.data.id_column
    test = release["test"]
    old_ids = test[id_col].to_numpy()
    for other in ("sample_submission", "solution"):
        if not np.array_equal(release[other][id_col].to_numpy(), old_ids):
            raise ValueError(f"{other} is not in the test order")   # build_release's promise
    every = np.concatenate([release[p][id_col].to_numpy() for p in ("train", "validation")]
                           + [old_ids])
    new_ids = _new_test_ids(every, len(old_ids))
    origins = pd.DataFrame({id_col: new_ids, "original_id": old_ids,
                            "original_file": test[FILE].to_numpy()})
    for name in ("test", "sample_submission", "solution"):
        release[name] = release[name].assign(**{id_col: new_ids})
    sources = {}
    for part in ("train", "validation", "test"):
        frame = release[part]
        names = frame[id_col].astype(str).to_numpy().astype(object) + ".png"
        sources[part] = sorted(zip(names, frame[FILE].to_numpy()))
        release[part] = frame.assign(**{FILE: names})
    return sources, origins


def _new_test_ids(every: np.ndarray, n: int) -> np.ndarray:
    """``n`` fresh ids, none of them in ``every`` (the table's ids), in order."""
    if every.dtype.kind in "iu":
        start = int(every.max()) + 1 if len(every) else 0
        return np.arange(start, start + n, dtype=np.int64)
    width = max(4, len(str(n)))
    new = np.array([f"{TEST_PREFIX}{k:0{width}d}" for k in range(1, n + 1)], dtype=object)
    clash = set(new) & set(map(str, every))
    if clash:
        raise DataError(f"the labels table has the id {min(clash)!r}, the kind of id the "
                        f"released test images get ({TEST_PREFIX}0001, ...); rename the ids "
                        f"that start with {TEST_PREFIX!r}")
    return new


@dataclass(frozen=True)
class ImageRelease:
    """What :func:`harness.splits.prepare` writes of an image competition: the images of
    ``folder`` in ``format``, per part ``(released name, source file)`` pairs."""

    folder: Path
    format: ImageFormat
    sources: dict[str, list[tuple[str, str]]]

    def write(self, released: Path, progress: Progress = terminal_bar) -> list[Path]:
        """Write every part's folder and zip into ``released``; returns the zips."""
        zips = []
        for part, pairs in self.sources.items():
            zips.append(released / f"{part}.zip")
            write_part(self.folder, pairs, released / part, zips[-1], self.format, progress)
        return zips


def write_part(folder: Path, sources: list[tuple[str, str]], out_dir: Path, zip_path: Path,
               fmt: ImageFormat, progress: Progress = terminal_bar) -> None:
    """Write one part's images: ``out_dir/NAME`` and the zip of them, entries ``PART/NAME``.

    One image is in memory at a time. The zip is the same bytes for the same images: the
    entries in ``sources`` order (sorted by name), a fixed date, stored as they are (PNG
    is compressed already), no extra fields.
    """
    out_dir.mkdir()
    part = out_dir.name
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in progress(sources, f"{part} images"):
            png = encode_png(folder / source, fmt)
            (out_dir / name).write_bytes(png)
            entry = zipfile.ZipInfo(f"{part}/{name}", date_time=ZIP_TIME)
            entry.create_system = 3                    # unix, whichever system prepares
            entry.external_attr = 0o100644 << 16       # a plain file, rw-r--r--
            archive.writestr(entry, png, compress_type=zipfile.ZIP_STORED)


def unpack_part(zip_path: Path, directory: Path) -> Path:
    """Unpack a downloaded ``PART.zip`` into ``directory/PART/`` (replacing an older one)
    and delete the zip; returns the folder.

    Only plain files right under ``PART/`` are taken: any other entry (an absolute path,
    a ``..``, a sub-folder) refuses the whole zip. The images are unpacked beside, then
    swapped in, so an interrupted unpack leaves no half folder under the real name.

    Raises
    ------
    DataError
        When the zip is damaged or holds an entry outside ``PART/``.
    """
    part = zip_path.name.removesuffix(".zip")
    target = directory / part
    staging = Path(tempfile.mkdtemp(prefix=f".{part}-", dir=directory))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = archive.infolist()
                for m in members:
                    path = PurePosixPath(m.filename)
                    if (path.is_absolute() or "\\" in m.filename or m.is_dir()
                            or len(path.parts) != 2 or path.parts[0] != part
                            or path.parts[1] in (".", "..")):
                        raise DataError(f"{zip_path.name} holds {m.filename!r}, not an image "
                                        f"under {part}/; download it again")
                archive.extractall(staging, members)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{zip_path.name} is damaged ({exc}); download it again") from None
        (staging / part).mkdir(exist_ok=True)    # a part with no images: an empty folder
        if target.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{part}-old-", dir=directory))
            target.rename(old / part)
            (staging / part).rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            (staging / part).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    zip_path.unlink()
    return target


# ------------------------------------------------------------------ the examples strip

STRIP_TILE = 64          # pixels of an example's longer side on the page
STRIP_COLUMNS = 10       # classes (or regression examples) shown
STRIP_ROWS = 3           # examples of each class
STRIP_PAD = 6


def example_strip(image_dir: Path, train: pd.DataFrame, target: str, *,
                  classification: bool) -> bytes:
    """A PNG of example training images: a column per class headed by its label (the
    first ``STRIP_COLUMNS`` classes, ``STRIP_ROWS`` images each), or for a regression
    target a row of images each headed by its value.

    ``train`` is the released train.csv (``file`` and ``target``); only training images,
    whose labels students have anyway, are ever drawn.
    """
    if classification:
        classes = sorted(pd.unique(train[target]), key=str)[:STRIP_COLUMNS]
        columns = [(str(c), train.loc[train[target] == c, FILE].head(STRIP_ROWS).tolist())
                   for c in classes]
    else:
        rows = train.head(STRIP_COLUMNS)
        columns = [(f"{v:.3g}", [f]) for v, f in zip(rows[target], rows[FILE])]
    font = ImageFont.load_default(size=12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    heading = max((probe.textbbox((0, 0), label, font=font)[3] for label, _ in columns),
                  default=0) + STRIP_PAD
    widths = [max(STRIP_TILE, int(probe.textlength(label, font=font))) + STRIP_PAD
              for label, _ in columns]
    tallest = max((len(files) for _, files in columns), default=1)
    strip = Image.new("RGB", (sum(widths) + STRIP_PAD,
                              heading + tallest * (STRIP_TILE + STRIP_PAD) + STRIP_PAD), "white")
    draw = ImageDraw.Draw(strip)
    x = STRIP_PAD
    for (label, files), width in zip(columns, widths):
        draw.text((x, STRIP_PAD // 2), label, fill="black", font=font)
        y = heading
        for name in files:
            with Image.open(image_dir / name) as im:
                tile = _tile(im.convert("RGB"))
            strip.paste(tile, (x + (width - STRIP_PAD - tile.width) // 2, y))
            y += STRIP_TILE + STRIP_PAD
        x += width
    out = io.BytesIO()
    strip.save(out, format="PNG")
    return out.getvalue()


def _tile(im: Image.Image) -> Image.Image:
    """``im`` fitted into the tile: small images grown in whole steps (sharp pixels, what
    the network sees), large ones shrunk smoothly."""
    longer = max(im.size)
    if longer <= STRIP_TILE:
        factor = max(1, STRIP_TILE // longer)
        return im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
    return ImageOps.contain(im, (STRIP_TILE, STRIP_TILE), Image.Resampling.LANCZOS)
