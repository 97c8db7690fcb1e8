"""styleforge.data.datasets: layouts, per-sample randomness, bad files, the bundled sample."""
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from styleforge.data.datasets import (
    DATASET_KINDS,
    ClassFolderDataset,
    ContentStyleDataset,
    PairedABDataset,
    PairedFolderDataset,
    SingleFolderDataset,
    UnpairedDataset,
    build_dataset,
    detect_layout,
)
from styleforge.data.images import image_size, list_images, load_rgb
from styleforge.data.transforms import Transform
from styleforge.errors import ConfigError, DataError

LOGGER = "styleforge.data"


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def same(x, y):
    assert x.keys() == y.keys()
    for k in x:
        if torch.is_tensor(x[k]):
            assert torch.equal(x[k], y[k]), k
        else:
            assert x[k] == y[k], k


def by_index(ds, indices, workers, batch_size=4):
    """Read ``indices`` through a DataLoader; -> {idx: sample dict}."""
    loader = DataLoader(ds, batch_size=batch_size, sampler=indices, num_workers=workers)
    out, pos = {}, 0
    for batch in loader:
        n = len(next(iter(v for v in batch.values() if isinstance(v, list))))
        for i in range(n):
            out[indices[pos]] = {k: v[i] for k, v in batch.items()}
            pos += 1
    assert pos == len(indices)
    return out


@pytest.fixture
def unpaired(tmp_path, noise_img):
    """5 A and 3 B noise images (PNG, 40x40)."""
    root = tmp_path / "u"
    for side, n in (("A", 5), ("B", 3)):
        (root / f"train{side}").mkdir(parents=True)
        for i in range(n):
            noise_img(ord(side) * 10 + i).save(root / f"train{side}" / f"{side.lower()}{i}.png")
    return root


# ---- unpaired --------------------------------------------------------------------------
def test_unpaired_length_indexing_and_random_partner(unpaired):
    ds = UnpairedDataset(unpaired, "train", Transform(36, 32), seed=7)
    a_files, b_files = list_images(unpaired / "trainA"), list_images(unpaired / "trainB")
    assert len(ds) == 5
    ds.set_epoch(4)
    seen_b = set()
    for idx in range(len(ds)):
        s = ds[idx]
        assert s["A_path"] == str(a_files[idx % 5])
        expected_b = np.random.default_rng([7, 4, idx]).integers(3)
        assert s["B_path"] == str(b_files[expected_b])
        assert s["A"].shape == s["B"].shape == (3, 32, 32)
        seen_b.add(s["B_path"])
        same(s, ds[idx])
    assert len(seen_b) > 1
    with pytest.raises(IndexError):
        ds[len(ds)]
    same(ds[-1], ds[len(ds) - 1])


def test_unpaired_serial_pairs_by_index(unpaired):
    ds = UnpairedDataset(unpaired, transform=Transform(32, 32, "resize", flip=False), serial=True)
    b_files = list_images(unpaired / "trainB")
    assert [ds[i]["B_path"] for i in range(5)] == [str(b_files[i % 3]) for i in range(5)]


def test_epochs_and_seeds_change_the_draws(unpaired):
    ds = UnpairedDataset(unpaired, transform=Transform(36, 32), seed=0)
    first = [ds[i] for i in range(5)]
    ds.set_epoch(1)
    second = [ds[i] for i in range(5)]
    assert any(not torch.equal(x["A"], y["A"]) for x, y in zip(first, second))
    ds.set_epoch(0)
    for x, y in zip(first, [ds[i] for i in range(5)]):
        same(x, y)
    other = UnpairedDataset(unpaired, transform=Transform(36, 32), seed=1)
    assert any(not torch.equal(x["A"], other[i]["A"]) for i, x in enumerate(first))


def test_unpaired_same_samples_with_0_or_2_workers(h2z):
    ds = UnpairedDataset(h2z, "train", Transform(40, 32), seed=3)
    ds.set_epoch(2)
    order = np.random.default_rng(0).permutation(len(ds))[:16].tolist()
    plain = by_index(ds, order, workers=0)
    workers = by_index(ds, order[::-1], workers=2)   # other order, other worker assignment
    for idx in order:
        same(plain[idx], workers[idx])
        same(plain[idx], ds[idx])


def test_unpaired_layout_errors(tmp_path, unpaired, facades):
    with pytest.raises(DataError, match="dataset folder not found") as e:
        UnpairedDataset(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    with pytest.raises(DataError) as e:
        UnpairedDataset(facades)
    msg = str(e.value)
    assert str(facades) in msg and "does not look like an unpaired dataset" in msg
    assert "expected trainA/ and trainB/ folders" in msg and "paired_ab" in msg
    with pytest.raises(DataError, match="testA/ and testB/"):
        UnpairedDataset(unpaired, "test")   # no test split: the trainer falls back to train
    for f in (unpaired / "trainB").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no images in") as e:
        UnpairedDataset(unpaired)
    assert str(unpaired / "trainB") in str(e.value)


# ---- bad files -------------------------------------------------------------------------
def test_bad_files_are_skipped_with_one_warning_each(unpaired, bad_files, caplog):
    bad = bad_files(unpaired / "trainA")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = UnpairedDataset(unpaired, transform=Transform(36, 32))
    early = {k: p for k, p in bad.items() if k != "decode_only"}
    msgs = warnings_of(caplog)
    for p in early.values():
        assert sum(str(p) in m for m in msgs) == 1
        assert all("\n" not in m for m in msgs)
    assert sorted(s[0] for s in ds.skipped) == sorted(str(p) for p in early.values())
    assert len(msgs) == len(early) + 1 and "skipped 4 of 10 file(s)" in msgs[-1]
    assert len(ds) == 6 and str(bad["decode_only"]) in [str(p) for p in ds.A_paths]

    # the file that only fails at full decode: reported once, its samples replaced by the next
    caplog.clear()
    k = [str(p) for p in ds.A_paths].index(str(bad["decode_only"]))
    for _ in range(2):
        for idx in range(len(ds)):
            s = ds[idx]
            assert s["A"].shape == (3, 32, 32)
            assert s["A_path"] != str(bad["decode_only"])
    assert ds[k]["A_path"] == str(ds.A_paths[(k + 1) % len(ds.A_paths)])
    msgs = warnings_of(caplog)
    assert len(msgs) == 1 and str(bad["decode_only"]) in msgs[0] and "replaced" in msgs[0]
    assert ds.skipped[-1][0] == str(bad["decode_only"]) and len(ds.skipped) == 5
    fresh = UnpairedDataset(unpaired, transform=Transform(36, 32))   # same replacement anywhere
    same(fresh[k], ds[k])


def test_dataloader_with_2_workers_runs_a_full_epoch_over_bad_files(tmp_path, noise_img, bad_files):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(9):
        noise_img(i, 24 + i, 30).save(folder / f"img{i}.png")
    bad_files(folder)
    ds = SingleFolderDataset(folder, Transform(20, 16))
    assert len(ds) == 10 and len(ds.skipped) == 4   # 9 good + 1 that fails only when decoded
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert [b["image"].shape[0] for b in batches] == [4, 4, 2]
    paths = sum((b["path"] for b in batches), [])
    assert len(paths) == 10 and not any("decode_fails" in p for p in paths)
    assert torch.isfinite(torch.cat([b["image"] for b in batches])).all()


def test_all_files_unreadable_is_an_error(tmp_path, bad_files):
    files = bad_files(tmp_path / "bad")
    files["decode_only"].unlink()
    with pytest.raises(DataError, match="no readable images") as e:
        SingleFolderDataset(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(e.value)


# ---- paired ----------------------------------------------------------------------------
def write_ab(folder, n, pos_img, w=48, h=40):
    """AB images whose halves both encode position (R = x, G = y); B channel 0 left, 255 right."""
    folder.mkdir(parents=True)
    for i in range(n):
        ab = Image.new("RGB", (2 * w, h))
        ab.paste(pos_img(w, h, blue=0), (0, 0))
        ab.paste(pos_img(w, h, blue=255), (w, 0))
        ab.save(folder / f"{i}.png")


@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop"])
def test_paired_ab_halves_get_the_same_crop_and_flip(tmp_path, pos_img, preprocess):
    write_ab(tmp_path / "p" / "train", 3, pos_img)
    ds = PairedABDataset(tmp_path / "p", "train", Transform(44, 32, preprocess), seed=5)
    flips = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for idx in range(len(ds)):
            s = ds[idx]
            assert s["A"].shape == s["B"].shape == (3, 32, 32)
            assert torch.equal(s["A"][:2], s["B"][:2])
            assert (s["A"][2] == -1).all() and (s["B"][2] == 1).all()
            assert s["A_path"] == s["B_path"] == str(tmp_path / "p" / "train" / f"{idx}.png")
            flips.add(bool(s["A"][0, 0, 0] > s["A"][0, 0, -1]))
    assert flips == {True, False}
    rev = PairedABDataset(tmp_path / "p", "train", Transform(44, 32, preprocess), seed=5, direction="BtoA")
    rev.set_epoch(3)
    assert torch.equal(rev[1]["A"], ds[1]["B"]) and torch.equal(rev[1]["B"], ds[1]["A"])


def test_paired_folders_match_by_stem_and_warn_about_the_rest(tmp_path, pos_img, caplog):
    base = tmp_path / "pf" / "train"
    for side, blue in (("A", 0), ("B", 255)):
        (base / side).mkdir(parents=True)
        for i in range(4):
            pos_img(40, 40, blue).save(base / side / f"{i}.{'png' if side == 'A' else 'bmp'}")
    pos_img(40, 40).save(base / "A" / "only_a.png")
    pos_img(40, 40).save(base / "B" / "only_b1.png")
    pos_img(40, 40).save(base / "B" / "only_b2.png")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = PairedFolderDataset(tmp_path / "pf", "train", Transform(40, 32, "crop"), seed=1)
    msgs = warnings_of(caplog)
    assert len(msgs) == 1 and msgs[0].startswith("3 unmatched")
    assert len(ds) == 4
    for idx in range(4):
        s = ds[idx]
        assert s["A_path"].endswith(f"A/{idx}.png") and s["B_path"].endswith(f"B/{idx}.bmp")
        assert torch.equal(s["A"][:2], s["B"][:2]) and (s["B"][2] == 1).all()
    with pytest.raises(DataError, match="does not look like a paired_folders dataset"):
        PairedFolderDataset(tmp_path / "pf", "test")


def test_paired_folders_without_phase_level_and_no_matches(tmp_path, noise_img):
    for side in "AB":
        (tmp_path / "flat" / side).mkdir(parents=True)
        noise_img(1).save(tmp_path / "flat" / side / f"x_{side}.png")
    with pytest.raises(DataError, match="same name") as e:
        PairedFolderDataset(tmp_path / "flat")
    assert str(tmp_path / "flat" / "A") in str(e.value)
    noise_img(2).save(tmp_path / "flat" / "A" / "both.png")
    noise_img(3).save(tmp_path / "flat" / "B" / "both.jpg")
    ds = PairedFolderDataset(tmp_path / "flat", "train")
    assert len(ds) == 1 and ds[0]["A"].shape == (3, 40, 40)


# ---- single, content/style, classes ----------------------------------------------------
def test_single_folder(tmp_path, noise_img):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in"):
        SingleFolderDataset(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        SingleFolderDataset(tmp_path / "missing")
    for i in range(3):
        noise_img(i, 30 + i, 20).save(tmp_path / "empty" / f"{i}.png")
    ds = SingleFolderDataset(tmp_path / "empty")   # no transform: full-size tensors
    assert [tuple(ds[i]["image"].shape) for i in range(3)] == [(3, 20, 30), (3, 20, 31), (3, 20, 32)]
    assert ds[2]["path"] == str(tmp_path / "empty" / "2.png")


def test_content_style_random_style_per_sample(h2z):
    ds = ContentStyleDataset(h2z / "testA", h2z / "testB", Transform(40, 32), seed=2)
    styles = list_images(h2z / "testB")
    assert len(ds) == 8
    got = [ds[i]["style_path"] for i in range(len(ds))]
    assert got == [str(styles[np.random.default_rng([2, 0, i]).integers(len(styles))]) for i in range(8)]
    s = ds[0]
    assert s["content"].shape == s["style"].shape == (3, 32, 32)
    assert s["content_path"].endswith(".jpg")


def test_class_folders(tmp_path, noise_img):
    for cls, n in (("zebra", 2), ("cat", 3), ("empty", 0), (".hidden", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            noise_img(i).save(tmp_path / cls / f"{i}.png")
    ds = ClassFolderDataset(tmp_path)
    assert ds.classes == ["cat", "zebra"] and ds.class_to_idx == {"cat": 0, "zebra": 1}
    assert [ds[i]["label"] for i in range(len(ds))] == [0, 0, 0, 1, 1]
    assert ds[4]["path"] == str(tmp_path / "zebra" / "1.png")
    with pytest.raises(DataError, match="one subfolder of images per class"):
        ClassFolderDataset(tmp_path / "cat")


def test_class_folder_pairs_draw_a_seeded_partner_with_its_own_label(h2z):
    animals = h2z.parent / "animals"
    tf = Transform(36, 32, "resize_and_crop")
    ds = ClassFolderDataset(animals, tf, seed=3, pairs=True)
    assert ds.classes == ["cat", "dog", "meerkat", "wild"] and len(ds) == 23
    partners = []
    for i in range(len(ds)):
        s = ds[i]
        assert s["class_image"].shape == s["image"].shape == (3, 32, 32)
        assert ds.classes[s["class_label"]] == Path(s["class_path"]).parent.name
        partners.append(s["class_path"])
    assert len(set(partners)) > 5  # random partners, not one fixed image
    again = ClassFolderDataset(animals, tf, seed=3, pairs=True)[7]
    assert again["class_path"] == partners[7] and torch.equal(again["class_image"], ds[7]["class_image"])
    ds.set_epoch(1)
    assert [ds[i]["class_path"] for i in range(len(ds))] != partners
    assert "class_image" not in ClassFolderDataset(animals, tf)[0]


# ---- factory and layout detection ------------------------------------------------------
def test_build_dataset_checks_kind_and_options(h2z):
    with pytest.raises(ConfigError) as e:
        build_dataset("unpaired_images", h2z)
    assert "unpaired_images" in str(e.value) and all(k in str(e.value) for k in DATASET_KINDS)
    with pytest.raises(ConfigError, match="direction"):
        build_dataset("unpaired", h2z, direction="AtoB")
    with pytest.raises(ConfigError, match="BtoC"):
        build_dataset("paired_ab", h2z.parent / "facades", direction="BtoC")
    with pytest.raises(DataError, match="not found"):
        build_dataset("single", h2z / "missing")


def test_detect_layout(tmp_path, h2z, facades, unpaired, pos_img, noise_img):
    assert detect_layout(h2z) == "unpaired" and detect_layout(unpaired) == "unpaired"
    assert detect_layout(facades) == "paired_ab"
    assert detect_layout(h2z / "testA") == "single"
    assert detect_layout(tmp_path / "nope") is None
    (tmp_path / "nothing").mkdir()
    assert detect_layout(tmp_path / "nothing") is None
    for side in "AB":
        (tmp_path / "pf" / "train" / side).mkdir(parents=True)
    assert detect_layout(tmp_path / "pf") == "paired_folders"
    for sub in ("content", "style"):
        (tmp_path / "cs" / sub).mkdir(parents=True)
    assert detect_layout(tmp_path / "cs") == "content_style"
    for cls in ("a", "b"):
        (tmp_path / "cls" / cls).mkdir(parents=True)
        noise_img(0).save(tmp_path / "cls" / cls / "0.png")
    assert detect_layout(tmp_path / "cls") == "class_folders"


def test_every_kind_on_the_bundled_sample(tmp_path, h2z, facades):
    tf = Transform(72, 64)
    train = build_dataset("unpaired", h2z, "train", tf, seed=0)
    test = build_dataset("unpaired", h2z, "test", tf, seed=0, serial=True)
    assert (len(train), len(test)) == (60, 8) and not train.skipped

    ab = build_dataset("paired_ab", facades, "train", tf, seed=0, direction="BtoA")
    assert len(ab) == 40 and len(build_dataset("paired_ab", facades, "test", tf)) == 8

    # the same facades as paired folders (the halves written losslessly): identical samples
    for side, box in (("A", (0, 0, 128, 128)), ("B", (128, 0, 256, 128))):
        (tmp_path / "pf" / "train" / side).mkdir(parents=True)
        for f in list_images(facades / "train"):
            load_rgb(f).crop(box).save(tmp_path / "pf" / "train" / side / f"{f.stem}.png")
    pf = build_dataset("paired_folders", tmp_path / "pf", "train", tf, seed=0, direction="BtoA")
    assert len(pf) == 40
    for idx in (0, 17):
        assert torch.equal(pf[idx]["A"], ab[idx]["A"]) and torch.equal(pf[idx]["B"], ab[idx]["B"])

    single = build_dataset("single", h2z, "testA", None)
    assert len(single) == 8 and single[0]["image"].shape == (3, 128, 128)
    cs = build_dataset("content_style", h2z, "train", tf, content_dir=h2z / "testA", style_dir=h2z / "testB")
    assert len(cs) == 8
    animals = h2z.parent / "animals"
    classes = build_dataset("class_folders", animals, "train", tf)
    assert classes.classes == sorted(d.name for d in animals.iterdir() if d.is_dir())
    assert len(classes) == sum(len(list_images(d)) for d in animals.iterdir() if d.is_dir())
    # an unpaired layout's trainA/ testA/ ... are splits, not classes: refused, naming the layout
    with pytest.raises(DataError, match="looks like an unpaired dataset"):
        build_dataset("class_folders", h2z, "train", tf)

    for ds in (train, test, ab, pf, single, cs, classes):
        batch = torch.utils.data.default_collate([ds[i] for i in range(2)])
        for v in batch.values():
            if torch.is_tensor(v) and v.is_floating_point():
                assert v.dtype == torch.float32 and v.min() >= -1 and v.max() <= 1 and v.std() > 0.05


def test_sample_folder_contents(h2z, facades):
    counts = {d.name: len(list_images(d)) for d in sorted(h2z.iterdir()) if d.is_dir()}
    assert counts == {"testA": 8, "testB": 8, "trainA": 60, "trainB": 60}
    assert {image_size(f) for d in h2z.iterdir() if d.is_dir() for f in d.iterdir()} == {(128, 128)}
    assert len(list_images(facades / "train")) == 40 and len(list_images(facades / "test")) == 8
    assert {image_size(f) for f in list_images(facades / "train")} == {(256, 128)}
    total = sum(f.stat().st_size for f in h2z.parent.rglob("*") if f.is_file())
    assert total < 5 * 1024 * 1024


def test_samples_do_not_keep_files_open(tmp_path, h2z):
    # datasets keep paths, not open files: the folder can go away after a sample is read
    root = tmp_path / "copy"
    for d in ("trainA", "trainB"):
        shutil.copytree(h2z / d, root / d)
    ds = UnpairedDataset(root, transform=Transform(40, 32))
    s = ds[0]
    shutil.rmtree(root)
    assert s["A"].shape == (3, 32, 32)
