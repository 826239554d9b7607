import numpy as np
import torch
from PIL import Image

from srpipe.default_plugins.espcn.data import PatchSampler, cached_pairs, dihedral, make_pairs
from srpipe.default_plugins.espcn.imresize import imresize
from srpipe.images import image_paths


def images(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (40 + k, 31, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    return folder


def test_pairs_are_aligned_and_augmented_consistently(tmp_path):
    pairs = make_pairs(image_paths(images(tmp_path / "a")), 3, rescales=(1.0, 0.8))
    assert len(pairs) == 6
    lr, hr = pairs[0]
    assert lr.dtype == np.uint8 and hr.shape == (39, 30) and lr.shape == (13, 10)
    torch.manual_seed(0)
    lr_b, hr_b = PatchSampler(pairs, 3, patch=8, batch_size=5, steps=1).batch()
    assert lr_b.shape == (5, 1, 8, 8) and hr_b.shape == (5, 1, 24, 24)
    # the LR interior is the degraded HR patch, whatever flip/rotation the pair got
    for lr_p, hr_p in zip(lr_b[:, 0].numpy() * 255, hr_b[:, 0].numpy() * 255):
        down = imresize(hr_p.astype(np.float64), 1 / 3)
        assert np.abs(down[3:-3, 3:-3] - lr_p[3:-3, 3:-3]).max() <= 0.5 + 1e-3


def test_dihedral_gives_eight_distinct_views():
    x = torch.arange(9).reshape(3, 3)
    assert len({tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}) == 8


def test_cache_round_trip(tmp_path):
    folder = images(tmp_path / "a", 2)
    first = cached_pairs(image_paths(folder), 2, (1.0,), tmp_path / "cache")
    again = cached_pairs(image_paths(folder), 2, (1.0,), tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    for (a, b), (c, d) in zip(first, again):
        assert np.array_equal(a, c) and np.array_equal(b, d)


def test_the_cache_tells_other_images_of_the_same_names_apart(tmp_path, monkeypatch):
    images(tmp_path / "a")
    (tmp_path / "b").mkdir()
    for k in range(3):  # same names, other pictures
        Image.fromarray(np.full((36, 30, 3), 40 * k, np.uint8)).save(tmp_path / "b" / f"{k}.png")
    for folder in ("a", "b"):  # relative paths, as a user gives them from each folder
        monkeypatch.chdir(tmp_path / folder)
        got = cached_pairs(image_paths("."), 2, (1.0,), tmp_path / "cache")
        assert [hr.shape for _, hr in got] == [hr.shape for _, hr in make_pairs(image_paths("."), 2, (1.0,))]
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "b" / "0.png")  # a picture rewritten in place
    assert cached_pairs(image_paths("."), 2, (1.0,), tmp_path / "cache")[0][1].shape == (50, 50)


def test_a_cached_archive_that_does_not_fit_its_images_is_made_again(tmp_path):
    import zipfile

    folder = images(tmp_path / "a", 2)
    want = cached_pairs(image_paths(folder), 2, (1.0,), tmp_path / "cache")
    (entry,) = (tmp_path / "cache").iterdir()
    np.savez(entry, lr0=np.zeros((5, 5), np.uint8), hr0=np.zeros((7, 7), np.float32))  # HR not twice the LR
    got = cached_pairs(image_paths(folder), 2, (1.0,), tmp_path / "cache")
    assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(want, got))
    with zipfile.ZipFile(entry, "w", zipfile.ZIP_DEFLATED) as archive:  # 2 KB that would unpack to 400 MB
        with archive.open("lr0.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.zeros((10000, 10000), np.float32))
    got = cached_pairs(image_paths(folder), 2, (1.0,), tmp_path / "cache")
    assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(want, got))
