"""Image competitions: prepare (determinism, disjoint parts, renamed test images, stripped
metadata, bad images refused by name), the built-in `shapes`, the download of the image
parts through the server, and the page's strip of example training images."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from harness.client import Client
from harness.errors import DataError, SpecError
from harness.home import IMAGE_PARTS, IMAGE_ZIPS, RELEASED_FILES, find_spec_path, load_prepared
from harness.spec import parse_spec
from harness.splits import prepare

N_SHAPES = 300
SPEC = """slug = "pets"
[data]
path = "labels.csv"
images = "pics"
target = "label"
task = "multiclass"
{extra}
[scoring]
metric = "accuracy"
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256)."""
    return {str(p.relative_to(root)): _sha(p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _noise(rng, height, width, mode="RGB") -> Image.Image:
    shape = (height, width) if mode == "L" else (height, width, 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def teacher_folder(root: Path, n: int = 40, size=(12, 10), extra: str = "") -> Path:
    """A teacher's image competition: labels.csv (id, label) and pics/<id>.png."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pics").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        _noise(rng, *size).save(root / "pics" / f"{i}.png")
    pd.DataFrame({"id": range(n), "label": ["cat", "dog"] * (n // 2)}).to_csv(
        root / "labels.csv", index=False)
    (root / "competition.toml").write_text(SPEC.format(extra=extra))
    return root


@pytest.fixture(scope="module")
def shapes_homes(tmp_path_factory):
    """`shapes` at n=300 prepared in two fresh homes, and the seconds the first took."""
    homes = [tmp_path_factory.mktemp(f"shapes{k}") / "home" for k in range(2)]
    started = time.perf_counter()
    prepare(find_spec_path("shapes"), homes[0], options={"n": N_SHAPES})
    seconds = time.perf_counter() - started
    prepare(find_spec_path("shapes"), homes[1], options={"n": N_SHAPES})
    return homes, seconds


@pytest.fixture(scope="module")
def shapes(shapes_homes):
    return load_prepared(shapes_homes[0][0], "shapes")


def test_shapes_prepares_fast_and_byte_for_byte_the_same_again(shapes_homes):
    (first, second), seconds = shapes_homes
    assert seconds < 30, f"shapes -o n={N_SHAPES} took {seconds:.1f} s to prepare"
    a, b = (h / "competitions" / "shapes" for h in (first, second))
    files = _tree(a)
    assert files == _tree(b)
    released = {name for name in files if name.startswith("released/")}
    assert {f"released/{n}" for n in RELEASED_FILES + IMAGE_ZIPS} <= released
    assert sum(name.endswith(".png") for name in released) == N_SHAPES
    assert {"hidden/solution.csv", "hidden/test_images.csv"} <= set(files)
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["image"] == {"height": 32, "width": 32, "channels": 3}
    assert manifest["feature_columns"] == ["file"]
    assert {f"released/{n}" for n in IMAGE_ZIPS} <= set(manifest["files"])


def test_shapes_is_what_its_spec_says(shapes):
    spec = shapes.spec.data
    assert shapes.is_image and spec.images is True and spec.flip_safe is False
    assert spec.image_size == (32, 32)
    labels = pd.concat([shapes.train, shapes.validation])["label"]
    assert set(labels) == {"circle", "square", "triangle", "star", "arrow_left", "arrow_right"}
    counts = labels.value_counts()
    assert counts.max() - counts.min() <= 0.2 * counts.mean()     # balanced, stratified
    with Image.open(shapes.image_dir("train") / shapes.train["file"].iloc[0]) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (32, 32))
    # the flip lesson needs the two arrows to be mirror images: a flipped left arrow is
    # not an image of the left class's shape any more (checked on the drawing itself)
    from importlib.util import module_from_spec, spec_from_file_location

    module_spec = spec_from_file_location("shapes_source", find_spec_path("shapes") / "prepare.py")
    source = module_from_spec(module_spec)
    module_spec.loader.exec_module(source)
    left = np.array(source._outline("arrow_left", np.zeros(2), 1.0, 0.0))
    right = np.array(source._outline("arrow_right", np.zeros(2), 1.0, 0.0))
    assert np.allclose(left * [-1, 1], right)
    tip = left[np.isclose(left[:, 1], 0)]          # the one point on the arrow's axis
    assert len(tip) == 1 and tip[0, 0] < 0            # points left


def test_parts_are_disjoint_and_each_image_is_its_row(shapes):
    id_col = shapes.spec.data.id_column
    tables = {p: shapes.released(p) for p in IMAGE_PARTS}
    ids = [set(t[id_col]) for t in tables.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    digests = {}
    for part, table in tables.items():
        folder = shapes.image_dir(part)
        assert sorted(p.name for p in folder.iterdir()) == sorted(table["file"])
        assert (table["file"] == table[id_col].astype(str) + ".png").all()
        digests[part] = {_sha((folder / f).read_bytes()) for f in table["file"]}
        assert len(digests[part]) == len(table)
        with zipfile.ZipFile(shapes.released_dir / f"{part}.zip") as archive:
            names = archive.namelist()
            assert names == sorted(names) == [f"{part}/{f}" for f in sorted(table["file"])]
            assert all(i.compress_type == zipfile.ZIP_STORED
                       and i.date_time == (1980, 1, 1, 0, 0, 0) for i in archive.infolist())
            assert {_sha(archive.read(n)) for n in names} == digests[part]
    assert not (digests["train"] & digests["test"] or digests["validation"] & digests["test"]
                or digests["train"] & digests["validation"])
    assert list(tables["train"].columns) == ["id", "file", "label"]
    assert list(tables["test"].columns) == ["id", "file"]
    sample = shapes.released("sample_submission")
    assert list(sample.columns) == ["id", "label"]


def test_test_images_carry_no_hint_of_label_order_or_usage(shapes):
    test = shapes.released("test")
    sample = shapes.released("sample_submission")
    solution = pd.read_csv(shapes.solution_path)
    origins = pd.read_csv(shapes.directory / "hidden" / "test_images.csv")
    assert (test["id"] == sample["id"]).all() and (test["id"] == solution["id"]).all()
    assert (origins["id"] == test["id"]).all()
    # new ids, in the released order: consecutive, after every training id
    first = int(test["id"].iloc[0])
    assert test["id"].tolist() == list(range(first, first + len(test)))
    assert first > pd.concat([shapes.train["id"], shapes.validation["id"]]).max()
    assert not set(test["id"]) & set(origins["original_id"])
    words = ("circle", "square", "triangle", "star", "arrow", "public", "private", "left")
    assert not [f for f in test["file"] if any(w in f.lower() for w in words)]
    # the public rows are spread over the order, not a block at one end
    public = np.flatnonzero(solution["Usage"] == "Public")
    assert 0.3 < public.mean() / len(solution) < 0.7
    # the teacher can trace each test image to the generated one it came from
    assert origins["original_file"].tolist() == [f"{i}.png" for i in origins["original_id"]]


def test_metadata_is_stripped_and_each_source_found(tmp_path):
    """A JPEG with EXIF (and a phone's rotation), a PNG with text and a colour profile, in
    sub-folders named by a file column; grey and colour mixed -> every image RGB, bare."""
    root = tmp_path / "course"
    root.mkdir()
    (root / "pics" / "a").mkdir(parents=True)
    (root / "pics" / "b").mkdir()
    rng = np.random.default_rng(1)
    files = []
    for i in range(30):
        name = f"{'ab'[i % 2]}/img{i}" + (".jpg" if i % 3 == 0 else ".png")
        files.append(name)
        if i == 0:       # stored 10 wide x 12 high, shown turned a quarter: 12 wide x 10 high
            exif = Image.Exif()
            exif[0x0112] = 6
            exif[0x010F] = "SecretCam label=dog"
            _noise(rng, 12, 10).save(root / "pics" / name, exif=exif.tobytes(), quality=95)
        elif name.endswith(".jpg"):
            exif = Image.Exif()
            exif[0x010E] = "a cat, public row"
            _noise(rng, 10, 12).save(root / "pics" / name, exif=exif.tobytes())
        else:
            info = PngImagePlugin.PngInfo()
            info.add_text("Comment", "label: cat")
            _noise(rng, 10, 12, "L" if i % 4 == 1 else "RGB").save(
                root / "pics" / name, pnginfo=info, icc_profile=b"not a real profile")
    pd.DataFrame({"id": [f"x{i}" for i in range(30)], "file": files,
                  "label": ["cat", "dog", "cow"] * 10}).to_csv(root / "labels.csv", index=False)
    (root / "competition.toml").write_text(SPEC.format(extra=""))
    prepared = prepare(root, tmp_path / "home")
    assert prepared.manifest["image"] == {"height": 10, "width": 12, "channels": 3}
    assert prepared.manifest["id_kind"] == "str"
    test_ids = prepared.released("test")["id"]
    assert all(i.startswith("test-") for i in test_ids)
    for part in IMAGE_PARTS:
        for path in prepared.image_dir(part).iterdir():
            data = path.read_bytes()
            for chunk in (b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"Exif"):
                assert chunk not in data, (path.name, chunk)
            assert b"cat" not in data and b"SecretCam" not in data
            with Image.open(path) as im:
                assert (im.format, im.mode, im.size) == ("PNG", "RGB", (12, 10))
                assert not set(im.info) - {"dpi"}, im.info     # nothing but Pillow's own
    origins = pd.read_csv(prepared.directory / "hidden" / "test_images.csv")
    assert set(origins["original_file"]) <= set(files)


def test_a_grey_folder_stays_grey(tmp_path):
    root = teacher_folder(tmp_path / "course")
    rng = np.random.default_rng(2)
    for path in (root / "pics").iterdir():
        _noise(rng, 12, 10, "L").save(path)
    prepared = prepare(root, tmp_path / "home")
    assert prepared.manifest["image"]["channels"] == 1
    with Image.open(next(prepared.image_dir("train").iterdir())) as im:
        assert im.mode == "L"


def _missing(root):
    (root / "pics" / "7.png").unlink()
    return "7.png"


def _not_an_image(root):
    (root / "pics" / "7.png").write_text("id,label\n1,cat\n")
    return "7.png"


def _truncated(root):
    path = root / "pics" / "7.png"
    path.write_bytes(path.read_bytes()[:120])
    return "7.png"


def _odd_size(root):
    _noise(np.random.default_rng(3), 12, 11).save(root / "pics" / "7.png")
    return "7.png"


def _gif(root):
    (root / "pics" / "7.png").unlink()
    _noise(np.random.default_rng(3), 12, 10).save(root / "pics" / "7.jpeg", format="GIF")
    return "7.jpeg"


def _two_images(root):
    shutil.copy(root / "pics" / "7.png", root / "pics" / "7.jpg")
    return "7.jpg"


@pytest.mark.parametrize("breaking, expect", [
    (_missing, "missing"), (_not_an_image, "cannot be read"), (_truncated, "cannot be read"),
    (_odd_size, "12x11 pixels"), (_gif, "GIF"), (_two_images, "has 2 images")])
def test_a_bad_image_is_refused_naming_the_file(tmp_path, breaking, expect):
    root = teacher_folder(tmp_path / "course")
    name = breaking(root)
    with pytest.raises(DataError, match=expect) as caught:
        prepare(root, tmp_path / "home")
    assert name in str(caught.value)
    assert not (tmp_path / "home" / "competitions" / "pets").exists()
    assert not [p for p in (tmp_path / "home" / "competitions").iterdir()]  # no leftovers


def test_the_size_is_the_specs_or_the_first_images(tmp_path):
    root = teacher_folder(tmp_path / "course", extra="image_size = [10, 12]")
    with pytest.raises(DataError, match=r"0.png.*12x10 pixels.*must be 10x12.*image_size"):
        prepare(root, tmp_path / "home")


@pytest.mark.parametrize("table, expect", [
    ({"id": ["a b"] * 1, "label": ["cat"]}, "cannot name an image file"),
    ({"id": [0], "file": ["../outside.png"], "label": ["cat"]}, "outside the image folder"),
    ({"id": [0, 1], "file": ["0.png", "0.png"], "label": ["cat", "dog"]}, "named by 2 rows"),
    ({"id": [0], "file": [None], "label": ["cat"]}, "empty in line 2"),
])
def test_a_labels_table_that_cannot_name_its_images_is_refused(tmp_path, table, expect):
    root = teacher_folder(tmp_path / "course")
    labels = pd.read_csv(root / "labels.csv")
    if "file" in table:
        labels["file"] = labels["id"].astype(str) + ".png"
    bad = pd.DataFrame(table)
    labels = pd.concat([bad, labels.iloc[len(bad):]], ignore_index=True)
    labels.to_csv(root / "labels.csv", index=False)
    with pytest.raises(DataError, match=expect):
        prepare(root, tmp_path / "home")


@pytest.mark.parametrize("data, key", [
    ('source = "sklearn:digits"\nimages = "pics"', "data.images"),
    ('path = "t.csv"\nimages = true', "data.images"),
    ('path = "t.csv"\nimages = false', "data.images"),
    ('path = "t.csv"\nimages = "pics"\nimage_size = [32]', "data.image_size"),
    ('path = "t.csv"\nimages = "pics"\nimage_size = [0, 32]', "data.image_size"),
    ('path = "t.csv"\nimages = "pics"\nflip_safe = "no"', "data.flip_safe"),
    ('path = "t.csv"\nflip_safe = false', "data.flip_safe"),
    ('path = "t.csv"\nimage_size = [8, 8]', "data.image_size"),
])
def test_image_keys_are_checked(data, key):
    import tomllib

    text = f'slug = "x"\n[data]\n{data}\ntarget = "y"\ntask = "binary"\n' \
           '[scoring]\nmetric = "accuracy"\n'
    with pytest.raises(SpecError, match=rf"\[{key}\]"):
        parse_spec(tomllib.loads(text))


def test_image_keys_leave_a_table_competitions_fingerprint_alone():
    import tomllib

    base = 'slug = "x"\n[data]\npath = "t.csv"\ntarget = "y"\ntask = "binary"\n{}' \
           '[scoring]\nmetric = "accuracy"\n'
    table = parse_spec(tomllib.loads(base.format("")))
    assert table.data.images is None and table.data.flip_safe is True
    with_images = parse_spec(tomllib.loads(base.format('images = "pics"\n')))
    flipped = parse_spec(tomllib.loads(base.format('images = "pics"\nflip_safe = false\n')))
    sized = parse_spec(tomllib.loads(base.format('images = "pics"\nimage_size = [8, 8]\n')))
    assert with_images.fingerprint() != table.fingerprint()
    assert flipped.fingerprint() == with_images.fingerprint()   # augmentation only
    assert sized.fingerprint() != with_images.fingerprint()


# ------------------------------------------------------------------ served


@pytest.fixture(scope="module")
def classroom(shapes_homes, tmp_path_factory, serve_app):
    """A server holding `shapes` (n=300) and `digits`, with one team."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(shapes_homes[0][0], home)
    prepare(find_spec_path("digits"), home)
    server = serve_app(home)
    return server, server.h.add_team("owls")[1]


def test_download_delivers_and_unpacks_the_image_parts(classroom, tmp_path, monkeypatch,
                                                       cli):
    server, token = classroom
    server.route_clients(monkeypatch)
    prepared = load_prepared(server.home, "shapes")
    listing = Client(server.url, token).competition("shapes")
    assert listing["files"] == list(RELEASED_FILES + IMAGE_ZIPS)
    seen = []
    saved = Client(server.url, token).download("shapes", tmp_path / "data",
                                               progress=lambda *a: seen.append(a))
    out = tmp_path / "data"
    assert [p.name for p in saved] == list(RELEASED_FILES) + list(IMAGE_PARTS)
    assert sorted(p.name for p in out.iterdir()) == sorted(RELEASED_FILES + IMAGE_PARTS)
    for part in IMAGE_PARTS:
        assert _tree(out / part) == _tree(prepared.image_dir(part))
    for name in RELEASED_FILES:
        assert (out / name).read_bytes() == (prepared.released_dir / name).read_bytes()
    zip_size = (prepared.released_dir / "train.zip").stat().st_size
    assert ("train.zip", zip_size, zip_size) in seen        # the bar's last tick, per zip

    # again through the command, over an older download: the folders are replaced
    (out / "train" / "stale.png").write_bytes(b"old")
    result = cli("download", "shapes", "-p", out, "--server", server.url,
                 env={"HARNESS_TOKEN": token})
    assert f"saved {out / 'train'}/ ({len(prepared.train):,} images)" in result.stdout
    assert not (out / "train" / "stale.png").exists()
    assert not list(out.glob("*.zip")) and not list(out.glob(".*"))


@pytest.mark.parametrize("entry", ["../evil.png", "/etc/evil.png", "test/0.png",
                                   "train/sub/0.png", "train/.."])
def test_unpacking_refuses_a_zip_with_entries_outside_its_part(tmp_path, entry):
    from harness.images import unpack_part

    with zipfile.ZipFile(tmp_path / "train.zip", "w") as archive:
        archive.writestr("train/1.png", b"fine")
        archive.writestr(entry, b"not fine")
    with pytest.raises(DataError, match="download it again"):
        unpack_part(tmp_path / "train.zip", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.zip"]
    assert not (tmp_path.parent / "evil.png").exists()


def test_only_released_names_are_served(classroom):
    server, token = classroom
    with server.client(token) as client:
        got = client.get("/api/competitions/shapes/files/test.zip")
        assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
        for name in ("solution.csv", "test_images.csv", "train", "examples.png",
                     "train%2F0.png", "hidden.zip"):
            assert client.get(f"/api/competitions/shapes/files/{name}").status_code == 404
        # a table competition has no zips to serve
        assert client.get("/api/competitions/digits/files/train.zip").status_code == 404
        assert "train.zip" not in client.get("/api/competitions/digits").json()["files"]


def test_the_page_shows_example_training_images(classroom):
    server, _ = classroom
    prepared = load_prepared(server.home, "shapes")
    with server.client() as client:
        page = client.get("/competitions/shapes")
        assert page.status_code == 200
        assert 'src="/competitions/shapes/examples.png"' in page.text
        assert "train.zip" in page.text
        strip = client.get("/competitions/shapes/examples.png")
        assert strip.status_code == 200 and strip.headers["content-type"] == "image/png"
        assert client.get("/competitions/shapes/examples.png").content == strip.content
        assert client.get("/competitions/digits/examples.png").status_code == 404
        assert "examples.png" not in client.get("/competitions/digits").text
    with Image.open(io.BytesIO(strip.content)) as im:
        assert im.format == "PNG" and im.width > 6 * 64 and im.height > 3 * 64
    # drawn from training images only: each tile is a training image, grown 2x
    train = {_sha(np.asarray(Image.open(prepared.image_dir("train") / f)).tobytes())
             for f in prepared.train["file"]}
    test = {_sha(np.asarray(Image.open(prepared.image_dir("test") / f)).tobytes())
            for f in prepared.released("test")["file"]}
    strip_pixels = np.asarray(Image.open(io.BytesIO(strip.content)).convert("RGB"))
    tiles = _tiles(strip_pixels)
    assert len(tiles) == 6 * 3
    assert {_sha(t.tobytes()) for t in tiles} <= train and not {_sha(t.tobytes())
                                                                 for t in tiles} & test


def _tiles(pixels: np.ndarray) -> list[np.ndarray]:
    """The images shown in the strip: its tile-sized blocks of non-white pixels, each
    shrunk back by the whole factor it was grown by."""
    from scipy import ndimage

    from harness.images import STRIP_TILE

    blocks, _ = ndimage.label((pixels != 255).any(axis=2))
    found = []
    for rows, cols in ndimage.find_objects(blocks):
        block = pixels[rows, cols]
        if block.shape[:2] == (STRIP_TILE, STRIP_TILE):
            small = block[::2, ::2]
            assert np.array_equal(np.repeat(np.repeat(small, 2, 0), 2, 1), block)
            found.append(np.ascontiguousarray(small))
    return found
