"""Still images: colour, grey, alpha and 16 bits survive the Y'CbCr round trip."""

import io
import os
import shlex
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from srpipe.images import rgb_to_ycbcr, ycbcr_to_rgb
from srpipe.testing import make_plugin_manager, make_test_image
from srpipe.upscaling import upscale

from conftest import run_srpipe


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager()


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def psnr(a, b, peak=255.0):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(peak**2 / mse)


def test_colour_conversion_round_trip_is_exact_on_8_bit():
    rgb = np.random.default_rng(1).integers(0, 256, (50, 50, 3)).astype(np.float64) * 257
    back = ycbcr_to_rgb(*rgb_to_ycbcr(rgb))
    assert np.abs(np.rint(back / 257) - rgb / 257).max() == 0


def test_rgb_image_close_to_rgb_bicubic(tmp_path, pm):
    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    result = upscale(str(source), model="bicubic", scale=2, pm=pm)
    assert result.output == str(tmp_path / "in_x2.png")
    out = read(result.output)
    reference = cv2.resize(read(source), (80, 60), interpolation=cv2.INTER_CUBIC)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    assert psnr(out, reference) > 30  # chroma is bicubic in Y'CbCr rather than in RGB


def test_grey_stays_grey_and_matches_opencv(tmp_path, pm):
    source = make_test_image(tmp_path / "grey.png", mode="grey")
    out = read(upscale(str(source), scale=3, pm=pm).output)
    reference = cv2.resize(read(source), (120, 90), interpolation=cv2.INTER_CUBIC)
    assert out.ndim == 2
    assert np.abs(out.astype(int) - reference).max() <= 1


@pytest.mark.parametrize("mode", ["rgba", "greya"])
def test_alpha_is_upscaled_and_kept(tmp_path, pm, mode):
    source = make_test_image(tmp_path / "a.png", mode=mode)
    out = read(upscale(str(source), scale=2, pm=pm).output)
    assert out.shape == (60, 80, 4)
    alpha = cv2.resize(read(source)[..., 3], (80, 60), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[..., 3].astype(int) - alpha).max() <= 1


@pytest.mark.parametrize("model", ["bicubic", "espcn"])
@pytest.mark.parametrize("hidden", [(0, 0, 0), (0, 255, 0)], ids=["black", "green"])
def test_colour_under_transparency_does_not_fringe_the_edge(tmp_path, model, hidden):
    """A white square on transparent pixels of another colour (black, as exports leave it, or
    green): over a white page the upscaled square shows no ring of that colour at its edge."""
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = hidden[::-1]  # BGR
    rgba[8:24, 8:24] = 255
    cv2.imwrite(str(tmp_path / "logo.png"), rgba)
    done = run_srpipe("upscale", tmp_path / "logo.png", "-m", model, "-o", tmp_path / "big.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    out = read(tmp_path / "big.png").astype(np.float64)
    alpha = out[..., 3:] / 255
    assert alpha.min() == 0 and 0.1 < alpha[16, 16, 0] < 0.9  # a soft edge, where the colours mix
    over_white = out[..., :3] * alpha + 255 * (1 - alpha)
    assert over_white.min() >= 253

@pytest.mark.parametrize("depth", [1, 8, 16])
def test_a_grey_pngs_transparent_grey_is_kept_as_alpha(tmp_path, depth):
    """A grey PNG's tRNS chunk (one grey made transparent) was dropped without a word: OpenCV
    decodes a palette or RGB PNG's tRNS as alpha, but not a grey one's."""
    from PIL import Image

    dtype, key, grey = {1: (bool, 1, 0), 8: (np.uint8, 7, 100), 16: (np.uint16, 7, 30000)}[depth]
    picture = np.full((24, 32), grey, dtype)
    picture[:, :10] = key
    Image.fromarray(picture).save(tmp_path / "grey.png", transparency=key)
    done = run_srpipe("upscale", tmp_path / "grey.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    out = read(tmp_path / "out.png")
    opaque = 65535 if depth == 16 else 255
    assert out.shape == (48, 64, 4) and out.dtype == (np.uint16 if depth == 16 else np.uint8)
    assert (out[:, :16, 3] == 0).all() and (out[:, 24:, 3] == opaque).all()
    assert (out[:, 24:, :3] == grey).all()


def test_a_grey_profile_is_not_written_into_the_colour_file_of_grey_with_alpha(tmp_path):
    """Grey with alpha is written as RGBA (OpenCV writes no grey and alpha PNG): a GRAY profile
    in it is one readers refuse."""
    from PIL import Image, ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[16:20] = b"GRAY"  # the colour space it says it is for, all srpipe reads of it
    picture = np.full((24, 32), 100, np.uint8)
    picture[:, :10] = 7
    Image.fromarray(picture).save(tmp_path / "grey.png", transparency=7, icc_profile=bytes(profile))
    done = run_srpipe("upscale", tmp_path / "grey.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'out.png'}: the input's ICC profile is for GRAY colours and the picture is written "
        "as RGB: the profile is dropped"]
    with Image.open(tmp_path / "out.png") as image:
        assert image.mode == "RGBA" and "icc_profile" not in image.info


def test_16_bit_png_stays_16_bit(tmp_path, pm):
    source = make_test_image(tmp_path / "deep.png", bit_depth=16)
    out = read(upscale(str(source), scale=2, pm=pm).output)
    assert out.dtype == np.uint16 and out.shape == (60, 80, 3)
    reference = cv2.resize(read(source), (80, 60), interpolation=cv2.INTER_CUBIC)
    assert psnr(out, reference, peak=65535.0) > 30


def test_jpeg_input_writes_png_by_default(tmp_path, pm):
    source = make_test_image(tmp_path / "photo.jpg")
    result = upscale(str(source), scale=4, pm=pm)
    assert result.output.endswith("photo_x4.png")
    assert read(result.output).shape == (120, 160, 3)


def test_names_that_are_not_utf8_are_read_and_written(tmp_path):
    """A file name's bytes need not be UTF-8 (Python holds them as lone surrogates), and OpenCV,
    which takes names as UTF-8, crashed on one: the picture goes through srpipe's own file I/O."""
    from conftest import run_srpipe

    folder = tmp_path / "in"
    folder.mkdir()
    odd = folder / os.fsdecode(b"\xff.png")
    make_test_image(folder / "plain.png", width=20, height=10)
    (folder / "plain.png").rename(odd)  # OpenCV could not write it by this name either
    out = tmp_path / os.fsdecode(b"\xfe-big.png")
    done = run_srpipe("upscale", odd, "-o", out)
    assert done.returncode == 0, done.stderr.decode()
    assert cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_UNCHANGED).shape == (20, 40, 3)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

    done = run_srpipe("batch", folder, tmp_path / "batch")
    assert done.returncode == 0, done.stderr.decode()
    written = np.fromfile(tmp_path / "batch" / odd.name, np.uint8)
    assert cv2.imdecode(written, cv2.IMREAD_UNCHANGED).shape == (20, 40, 3)


# A phone's photo is stored as the sensor lay and shown the way its EXIF orientation says.
# (OpenCV turns a TIFF itself: srpipe then only swaps the sides it expects)
@pytest.mark.parametrize("suffix, orientation", [(suffix, orientation) for suffix in (".png", ".webp", ".jpg", ".tif")
                                                 for orientation in (3, 6, 8)])
def test_exif_orientation_is_applied_before_upscaling(tmp_path, suffix, orientation):
    from PIL import Image, ImageOps

    stored = Image.fromarray(np.random.default_rng(orientation).integers(0, 256, (30, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"lossless": True} if suffix == ".webp" else {"quality": 95} if suffix == ".jpg" else {}
    stored.save(tmp_path / f"photo{suffix}", exif=exif, **options)
    with Image.open(tmp_path / f"photo{suffix}") as image:
        shown = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    Image.fromarray(shown).save(tmp_path / "shown.png")  # the same picture, upright, with no tag
    done = run_srpipe("upscale", tmp_path / f"photo{suffix}", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    assert run_srpipe("upscale", tmp_path / "shown.png", "-o", tmp_path / "expected.png", "-q").returncode == 0
    out, expected = read(tmp_path / "out.png"), read(tmp_path / "expected.png")
    assert out.shape == expected.shape == (2 * shown.shape[0], 2 * shown.shape[1], 3)
    # JPEG: OpenCV's and Pillow's decoders round a little differently
    assert np.abs(out.astype(int) - expected).mean() < (1 if suffix == ".jpg" else 0.01)


@pytest.mark.parametrize("out", [".jpg", ".png", ".webp"])
def test_a_photos_exif_is_kept_for_the_upright_upscaled_picture(tmp_path, out):
    """The camera, the date and the place were dropped; kept, the orientation must say the picture
    is upright (it is written so) and the size must be the new one."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x30, shown 30x40
    exif[ExifTags.Base.Model] = "Test Camera"
    camera = exif.get_ifd(ExifTags.IFD.Exif)
    camera[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    camera[ExifTags.Base.ExifImageWidth], camera[ExifTags.Base.ExifImageHeight] = 40, 30
    camera[ExifTags.Base.MakerNote] = b"offsets into the old file"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "photo.jpg", exif=exif)
    done = run_srpipe("upscale", tmp_path / "photo.jpg", "-o", tmp_path / f"out{out}", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    with Image.open(tmp_path / f"out{out}") as image:
        assert image.size == (60, 80)
        kept = image.getexif()
        assert kept[0x0112] == 1 and kept[ExifTags.Base.Model] == "Test Camera"
        camera = kept.get_ifd(ExifTags.IFD.Exif)
        assert camera[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
        assert (camera[ExifTags.Base.ExifImageWidth], camera[ExifTags.Base.ExifImageHeight]) == (60, 80)
        assert ExifTags.Base.MakerNote not in camera
        assert kept.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    done = run_srpipe("upscale", tmp_path / "photo.jpg", "-o", tmp_path / "out.bmp", "-q")
    assert done.returncode == 0 and done.stderr.decode() == (
        f"Warning: {tmp_path / 'out.bmp'}: srpipe writes no EXIF into BMP: the input's camera, date and place are "
        "dropped (write .png, .jpg or .webp to keep them)\n")


def test_exif_over_what_a_jpeg_holds_is_dropped_with_a_warning(tmp_path):
    """A JPEG segment holds 64 KB: OpenCV refused the whole picture ('cannot encode ... as .jpg')."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "x" * 70_000
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "photo.png", exif=exif)
    done = run_srpipe("upscale", tmp_path / "photo.png", "-o", tmp_path / "out.jpg", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert "is more than a JPEG holds: it is dropped (write .png or .webp to keep it)" in done.stderr.decode()
    assert read(tmp_path / "out.jpg").shape[:2] == (60, 80)


def test_a_damaged_exif_passes_without_pillows_words(tmp_path):
    """Pillow's own warnings on a damaged EXIF ('Corrupt EXIF data...', naming no file) reached the user."""
    from PIL import Image

    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "good.jpg")
    data = (tmp_path / "good.jpg").read_bytes()
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02\x00\x00\x00\x20\x00\x00\x00\x40"  # 5 tags said, 1 there
    segment = b"\xff\xe1" + (len(tiff) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    (tmp_path / "photo.jpg").write_bytes(data[:2] + segment + data[2:])
    done = run_srpipe("upscale", tmp_path / "photo.jpg", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    assert read(tmp_path / "out.png").shape[:2] == (60, 80)


def test_a_target_size_is_of_the_picture_as_shown(tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn: 40x30 stored, 30x40 shown
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "photo.jpg", exif=exif)
    done = run_srpipe("upscale", tmp_path / "photo.jpg", "--width", "60", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert read(tmp_path / "out.png").shape[:2] == (80, 60)


def test_an_animated_webp_is_refused_with_how_to_make_it_one_srpipe_reads(tmp_path):
    """Its first frame was written, the rest lost with a warning, exit 0 (batch said done):
    FFmpeg decodes no animated WebP, so it cannot go the way of GIF and APNG, as a video."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(3)]
    name = "it's anim.webp"  # a quote and a space: the command it gives still runs
    pictures[0].save(tmp_path / name, save_all=True, append_images=pictures[1:], lossless=True)
    done = run_srpipe("upscale", name, "-o", "out.webp", cwd=tmp_path)
    assert done.returncode == 1
    said = done.stderr.decode()
    interpreter = shlex.quote(sys.executable)
    assert said.startswith(f"Error: {name} is an animated WebP (3 frames), which srpipe cannot read whole; make it an "
                           f"animated PNG first ({interpreter} -c ") and said.endswith(") and upscale that\n")
    assert sorted(os.listdir(tmp_path)) == [name]
    command = said[said.index(f"({interpreter} -c ") + 1:said.rindex(") and upscale that")]
    # as given, where no python3 on the PATH has Pillow (srpipe's own interpreter has it)
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, env={"PATH": str(tmp_path / "no-programs")})
    done = run_srpipe("upscale", "it's anim.apng", "-o", "out.apng", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    import av

    with av.open(str(tmp_path / "out.apng")) as container:
        assert [frame.to_ndarray().max() for frame in container.decode(video=0)] == [0, 60, 120]

    (tmp_path / "folder").mkdir()
    os.replace(tmp_path / name, tmp_path / "folder" / "anim.webp")
    done = run_srpipe("batch", tmp_path / "folder", tmp_path / "batch", "-q")
    assert done.returncode == 1 and "is an animated WebP (3 frames)" in done.stderr.decode()


def test_a_tiff_of_pages_is_refused_and_its_thumbnails_are_left_out_with_a_warning(tmp_path):
    """Its first page was written, the others lost with a warning, exit 0; a reduced-resolution
    copy of the picture (NewSubfileType 1: a scanner's or camera's thumbnail) is no page."""
    from PIL import Image

    pages = [Image.fromarray(np.full((24, 32, 3), 60 * index, np.uint8)) for index in range(3)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    done = run_srpipe("upscale", tmp_path / "pages.tif", "-o", tmp_path / "out.tif")
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"Error: {tmp_path / 'pages.tif'} holds 3 pages, and srpipe writes one picture a file; split it into a file "
        f"a page first (tiffsplit, or magick {tmp_path / 'pages.tif'} page-%d.tif)\n")
    assert not (tmp_path / "out.tif").exists()

    thumbnail = Image.fromarray(np.full((6, 8, 3), 60, np.uint8))
    thumbnail.encoderinfo = {"tiffinfo": {254: 1}}  # NewSubfileType: reduced resolution
    mask = Image.fromarray(np.full((24, 32), 255, np.uint8))
    mask.encoderinfo = {"tiffinfo": {254: 4}}  # NewSubfileType: the picture's transparency mask
    pages[1].save(tmp_path / "photo.tif", save_all=True, append_images=[thumbnail, mask])
    done = run_srpipe("upscale", tmp_path / "photo.tif", "-o", tmp_path / "out.tif", "-q")
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'photo.tif'}: its thumbnails and masks of the picture (pages that are no pictures of "
        "their own) are left out; the picture is upscaled"]
    assert read(tmp_path / "out.tif").shape[:2] == (48, 64) and (read(tmp_path / "out.tif") == 60).all()


def test_a_phones_photo_with_a_gain_map_is_one_picture(tmp_path):
    from PIL import Image

    photo, gain_map = (Image.fromarray(np.full((24, 32, 3), value, np.uint8)) for value in (90, 200))
    photo.save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=[gain_map])  # as Ultra HDR stores it
    with Image.open(tmp_path / "phone.jpg") as image:
        assert image.format == "MPO" and image.n_frames == 2
    done = run_srpipe("upscale", tmp_path / "phone.jpg", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()


def test_a_tiff_whose_header_lies_after_its_pixels_is_sized_before_decoding(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (300, 400), np.uint8)  # 120 KB, whatever the compression
    cv2.imwrite(str(tmp_path / "big.tif"), noise)
    with open(tmp_path / "big.tif", "rb") as file:
        assert int.from_bytes(file.read(8)[4:], "little") > 1 << 16  # libtiff wrote the IFD after the pixels
    done = run_srpipe("upscale", tmp_path / "big.tif", "--max-pixels", "100000", "-o", tmp_path / "out.tif")
    assert done.returncode == 1
    assert "has 400x300 frames (0.1 megapixels), over the limit" in done.stderr.decode()


def test_an_os2_bitmap_is_read_at_its_size(tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    path = tmp_path / "os2.bmp"
    # OS/2's 12-byte header: 16-bit width and height, bottom row first, rows padded to 4 bytes
    header = b"BM" + (26 + rows.nbytes).to_bytes(4, "little") + bytes(4) + (26).to_bytes(4, "little")
    header += (12).to_bytes(4, "little") + (64).to_bytes(2, "little") + (48).to_bytes(2, "little")
    header += (1).to_bytes(2, "little") + (24).to_bytes(2, "little")
    path.write_bytes(header + rows[::-1].tobytes())
    done = run_srpipe("upscale", path, "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    out = read(tmp_path / "out.png")
    assert out.shape == (96, 128, 3)
    assert psnr(out, cv2.resize(rows, (128, 96), interpolation=cv2.INTER_CUBIC)) > 30  # BGR, as BMP stores it


def test_a_reader_that_closes_an_image_output_early_ends_srpipe_quietly(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), np.uint8)  # a PNG far larger than a pipe holds
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "upscale", tmp_path / "noise.png", "-o", "/dev/stdout"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with process.stdout as reader:
        assert len(reader.read(10)) == 10
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""
    assert sorted(os.listdir(tmp_path)) == ["noise.png"]


def test_jpeg_output_says_what_it_cannot_hold(tmp_path):
    y, x = np.mgrid[:24, :32]
    cv2.imwrite(str(tmp_path / "deep.png"), np.dstack([x * 1000, y * 1300, (x + y) * 600, y * 1300]).astype(np.uint16))
    done = run_srpipe("upscale", tmp_path / "deep.png", "-o", tmp_path / "out.jpg", "-q")
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'out.jpg'}: JPEG holds no transparency: the alpha channel is dropped (write .png, "
        ".webp or .tif to keep it)",
        f"Warning: {tmp_path / 'out.jpg'}: JPEG holds 8 bits a sample: the 16-bit picture is written in 8 (write .png "
        "or .tif to keep 16)"]
    assert run_srpipe("upscale", tmp_path / "deep.png", "-o", tmp_path / "out.png", "-q").stderr == b""



def test_a_picture_piped_in_is_told_to_come_by_its_file_name(tmp_path):
    """'cat in.png | srpipe upscale - -o out.png' said '- is a video', which the user knew it was not."""
    source = make_test_image(tmp_path / "in.png")
    done = run_srpipe("upscale", "-", "-o", "out.png", input=source.read_bytes(), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.decode() == (
        "Error: standard input is read as video (a stream), so the output out.png cannot be an image; give a picture "
        "by its file name, or name a video output (.mp4, .mkv)\n")
    assert sorted(os.listdir(tmp_path)) == ["in.png"]

@pytest.mark.parametrize("name", ["text.png", "text.jpg"])
def test_a_file_named_as_a_picture_that_is_none_says_so(tmp_path, name):
    (tmp_path / name).write_text("hello\n")
    done = run_srpipe("upscale", tmp_path / name)
    assert done.returncode == 1
    assert done.stderr.decode() == (f"Error: cannot read {tmp_path / name} as an image (corrupt, truncated or not an "
                                    "image); check that it is a complete PNG/JPEG/WebP/BMP/TIFF\n")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_colour_profile_is_kept_where_the_output_holds_one(tmp_path, suffix):
    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # a phone's would be Display P3
    picture = np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8)
    Image.fromarray(picture).save(tmp_path / f"photo{suffix}", icc_profile=profile,
                                  **({"lossless": True} if suffix == ".webp" else {}))
    for out in (".png", ".jpg", ".webp"):
        done = run_srpipe("upscale", tmp_path / f"photo{suffix}", "-o", tmp_path / f"out{out}", "-q", "-y")
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
        with Image.open(tmp_path / f"out{out}") as image:
            assert image.info.get("icc_profile") == profile, out
    done = run_srpipe("upscale", tmp_path / f"photo{suffix}", "-o", tmp_path / "out.tif", "-q", "-y")
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'out.tif'}: srpipe writes no colour profile into TIFF: the input's ICC profile is "
        "dropped (write .png, .jpg or .webp to keep it)"]



def with_png_chunks(path, *chunks):
    """The PNG at ``path`` with ``chunks`` ((kind, data)) after its IHDR, where colour chunks go."""
    data = path.read_bytes()
    whole = b"".join(len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
                     for kind, body in chunks)
    path.write_bytes(data[:33] + whole + data[33:])


def test_a_pngs_colour_and_text_chunks_are_kept_in_a_png_and_said_dropped_elsewhere(tmp_path):
    """OpenCV writes no gAMA, cHRM, sRGB or text chunks: a PNG's gamma and primaries (how its
    colours are shown) and its text were dropped without a word, where its ICC profile was kept."""
    from PIL import Image, PngImagePlugin

    from srpipe.media import png_chunks

    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "noise")
    text.add_itxt("parameters", "a prompt, in full: é", zip=True)
    picture = np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8)
    Image.fromarray(picture).save(tmp_path / "in.png", pnginfo=text)
    primaries = (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)  # BT.709's, as cHRM stores them
    with_png_chunks(tmp_path / "in.png", (b"gAMA", (45455).to_bytes(4, "big")),
                    (b"cHRM", b"".join(value.to_bytes(4, "big") for value in primaries)))
    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    kinds = {b"gAMA", b"cHRM", b"sRGB", b"tEXt", b"zTXt", b"iTXt"}
    assert png_chunks(str(tmp_path / "out.png"), kinds, whole=True) == png_chunks(str(tmp_path / "in.png"), kinds,
                                                                                  whole=True)
    with Image.open(tmp_path / "out.png") as image:
        image.load()  # the chunks' checksums checked
        assert image.size == (64, 48) and image.info["gamma"] == 0.45455
        assert image.info["Title"] == "noise" and image.info["parameters"] == "a prompt, in full: é"
    reference = cv2.resize(picture[..., ::-1], (64, 48), interpolation=cv2.INTER_CUBIC)
    assert psnr(read(tmp_path / "out.png"), reference) > 25  # the picture itself untouched by the chunks moved in

    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "out.jpg", "-q")
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'out.jpg'}: srpipe writes no cHRM or gAMA into JPEG: the input PNG's word on how its "
        "colours are shown is dropped (write .png to keep it)",
        f"Warning: {tmp_path / 'out.jpg'}: srpipe writes no PNG text into JPEG: the input's (a title, a comment, a "
        "generator's settings) is dropped (write .png to keep it)"]
    # an sRGB chunk says what a JPEG is taken to be: its gAMA (sRGB's, for old readers) says nothing more
    Image.fromarray(picture).save(tmp_path / "srgb.png")
    with_png_chunks(tmp_path / "srgb.png", (b"sRGB", b"\0"), (b"gAMA", (45455).to_bytes(4, "big")))
    done = run_srpipe("upscale", tmp_path / "srgb.png", "-o", tmp_path / "srgb.jpg", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    written = run_srpipe("upscale", tmp_path / "srgb.png", "-o", "/dev/stdout", "-q")  # encoded in memory
    assert written.returncode == 0, written.stderr.decode()
    with Image.open(io.BytesIO(written.stdout)) as image:
        image.load()
        assert image.info["srgb"] == 0 and image.info["gamma"] == 0.45455

def test_the_header_of_a_picture_over_pillows_own_limit_is_read(tmp_path, monkeypatch):
    """Pillow refuses pictures over 179 megapixels (a 200 MP phone photo) with an error that hid
    the orientation and profile; a limit lowered to 100 pixels stands in for it here."""
    from PIL import Image

    from srpipe.images import image_header

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "big.jpg", exif=exif)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    header = image_header(str(tmp_path / "big.jpg"))
    assert header.orientation == 6 and header.size == (40, 30)


@pytest.mark.parametrize("out", [".png", ".jpg", ".webp"])
def test_a_picture_of_equal_channels_with_an_rgb_profile_stays_colour_with_it(tmp_path, out):
    """A phone's black-and-white photo: equal channels and an RGB profile (here sRGB's; Display P3's
    or Adobe RGB's tone curve is not sRGB's). It was written grey and the profile dropped, with a
    warning: the greys then read as sRGB's."""
    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey = np.repeat(np.random.default_rng(0).integers(0, 256, (24, 32, 1), np.uint8), 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "grey.png", icc_profile=profile)
    done = run_srpipe("upscale", tmp_path / "grey.png", "-o", tmp_path / f"out{out}", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    with Image.open(tmp_path / f"out{out}") as image:
        assert image.mode == "RGB" and image.info.get("icc_profile") == profile


@pytest.mark.parametrize("given, signature", [((), b"\x89PNG"), (("--format", "jpeg"), b"\xff\xd8\xff")])
def test_a_picture_is_written_to_standard_output(tmp_path, given, signature):
    """`-o -` was refused with "name the output .png, .jpg...", and `-o /dev/stdout` into a file
    with "already exists": a picture goes to a pipe as PNG, or in the format --format names."""
    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    done = run_srpipe("upscale", source, "-o", "-", *given)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(signature)
    picture = cv2.imdecode(np.frombuffer(done.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    assert picture.shape == (60, 80, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


@pytest.mark.parametrize("output", ["-", "out.png"])
def test_a_format_that_is_no_picture_is_refused(tmp_path, output):
    """A picture file's output took any --format (nonsense too) and wrote PNG, exit 0."""
    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    done = run_srpipe("upscale", source, "-o", output, "--format", "gif", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.decode().strip().splitlines() == [
        "Error: --format gif is not a picture format srpipe writes; use one of bmp, jpeg, jpg, png, tiff, webp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


@pytest.mark.parametrize("fifo, given, signature", [("pipe", "jpeg", b"\xff\xd8\xff"), ("pipe.png", "webp", b"RIFF"),
                                                    ("pipe.png", None, b"\x89PNG")])
def test_a_picture_into_a_fifo_is_in_the_format_named(tmp_path, fifo, given, signature):
    """--format was read for -o - alone: a FIFO, whose name says nothing to its reader, got PNG."""
    from conftest import FifoReader

    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    os.mkfifo(tmp_path / fifo)
    reader = FifoReader(tmp_path / fifo)
    done = run_srpipe("upscale", source, "-o", tmp_path / fifo, "-q", *(["--format", given] if given else []))
    assert done.returncode == 0, done.stderr.decode()
    written = reader.result()
    assert written.startswith(signature)
    assert cv2.imdecode(np.frombuffer(written, np.uint8), cv2.IMREAD_UNCHANGED).shape == (60, 80, 3)


def test_a_format_that_contradicts_the_files_name_is_refused(tmp_path):
    """-o out.png --format webp wrote a PNG, --format not said ignored. A file is written in the format its
    name says (readers go by it): --format may say the same, in its own words."""
    source = make_test_image(tmp_path / "in.png", width=40, height=30)
    done = run_srpipe("upscale", source, "-o", tmp_path / "out.png", "--format", "webp")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"Error: --format webp contradicts the output's name {tmp_path / 'out.png'}, which says PNG; name it .webp "
        "or leave out --format"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    for name, given in (("out.jpeg", "jpg"), ("out.tiff", "TIFF")):
        done = run_srpipe("upscale", source, "-o", tmp_path / name, "--format", given, "-q")
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
        assert read(tmp_path / name).shape == (60, 80, 3)


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("to", ["file", "file.tiff", "stdout"])
def test_an_rgba_tiff_says_its_fourth_sample_is_alpha(tmp_path, depth, to):
    """OpenCV's RGBA TIFF had no ExtraSamples tag (338): libtiff warns of it, and editors may
    take the fourth sample for a channel of its own, not transparency."""
    from PIL import Image

    rgba = np.random.default_rng(5).integers(0, 2**depth, (24, 32, 4)).astype(np.uint8 if depth == 8 else np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), rgba)
    given = {"file": ["-o", tmp_path / "out.tif"], "file.tiff": ["-o", tmp_path / "out.tiff"],
             "stdout": ["-o", "-", "--format", "tiff"]}[to]
    done = run_srpipe("upscale", tmp_path / "in.png", *given, "-q")
    assert done.returncode == 0, done.stderr.decode()
    if to == "stdout":
        (tmp_path / "out.tif").write_bytes(done.stdout)
    if to == "file.tiff":
        (tmp_path / "out.tiff").rename(tmp_path / "out.tif")
    with Image.open(tmp_path / "out.tif") as written:
        assert written.tag_v2[338] == (2,) and written.tag_v2[277] == 4  # unassociated alpha
        written.load()
    out = read(tmp_path / "out.tif")
    assert out.shape == (48, 64, 4) and out.dtype == rgba.dtype
    reference = cv2.resize(rgba, (64, 48), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[..., 3].astype(int) - reference[..., 3]).max() <= 2 ** (depth - 8)


@pytest.mark.parametrize("given", [".jpg", ".png", ".tif", ".bmp"])
@pytest.mark.parametrize("wanted", [".jpg", ".png", ".tif", ".tiff", ".bmp", "-"])
def test_the_density_is_kept_and_turned_with_the_picture(tmp_path, given, wanted):
    """Pixels an inch were dropped (JFIF 1:1 with no unit, no pHYs, no XResolution). Kept as they
    were, as image editors keep them when they resize: the upscale prints larger."""
    from PIL import Image

    picture = Image.fromarray(np.random.default_rng(6).integers(0, 256, (24, 32, 3)).astype(np.uint8))
    picture.save(tmp_path / f"in{given}", dpi=(300, 150))
    output = ["-o", "-", "--format", "jpeg"] if wanted == "-" else ["-o", tmp_path / f"out{wanted}"]
    done = run_srpipe("upscale", tmp_path / f"in{given}", *output, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with Image.open(io.BytesIO(done.stdout) if wanted == "-" else tmp_path / f"out{wanted}") as written:
        assert written.size == (64, 48) and np.allclose(written.info["dpi"], (300, 150), rtol=1e-4)
    if given == ".jpg":  # a photo shown turned a quarter: its density turned with it
        exif = Image.Exif()
        exif[0x0112] = 6
        picture.save(tmp_path / "turned.jpg", dpi=(300, 150), exif=exif)
        done = run_srpipe("upscale", tmp_path / "turned.jpg", "-o", tmp_path / "turned.png", "-q")
        assert done.returncode == 0, done.stderr.decode()
        with Image.open(tmp_path / "turned.png") as written:
            assert written.size == (48, 64) and np.allclose(written.info["dpi"], (150, 300), rtol=1e-4)


@pytest.mark.parametrize("wanted", [".jpg", ".png", ".tif", ".bmp"])
def test_a_density_no_format_holds_is_left_out(tmp_path, wanted):
    """A TIFF may say 4e9 pixels an inch: PNG's and BMP's fields overflowed ('unexpected error')
    and OpenCV refused the TIFF, where the picture was written before densities were kept."""
    from PIL import Image

    picture = Image.fromarray(np.random.default_rng(6).integers(0, 256, (24, 32, 3)).astype(np.uint8))
    picture.save(tmp_path / "in.tif", dpi=(4e9, 4e9))
    done = run_srpipe("upscale", tmp_path / "in.tif", "-o", tmp_path / f"out{wanted}", "-q")
    assert done.returncode == 0, done.stderr.decode()
    with Image.open(tmp_path / f"out{wanted}") as written:
        assert written.size == (64, 48) and written.info.get("dpi", (72, 72))[0] < 65536


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_an_icc_profile_larger_than_a_jpeg_segment_is_written_in_several(tmp_path, to):
    """OpenCV writes a JPEG's profile in one APP2 segment (64 KB at most) and refused a larger
    one: the JPEG could not be written at all ("cannot encode ... use .png")."""
    from PIL import Image, ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profile = (150_000).to_bytes(4, "big") + srgb[4:] + bytes(150_000 - len(srgb))  # its size said in its header
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    picture = Image.fromarray(np.random.default_rng(7).integers(0, 256, (24, 32, 3)).astype(np.uint8))
    picture.save(tmp_path / "in.jpg", icc_profile=profile, exif=exif)  # Pillow splits it over 3 segments
    output = ["-o", "-", "--format", "jpeg"] if to == "stdout" else ["-o", tmp_path / "out.jpg"]
    done = run_srpipe("upscale", tmp_path / "in.jpg", *output, "-q")
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    written = done.stdout if to == "stdout" else (tmp_path / "out.jpg").read_bytes()
    with Image.open(io.BytesIO(written)) as out:
        assert out.info["icc_profile"] == profile and out.getexif()[0x010F] == "Camera"
    at, markers = 2, []
    while written[at + 1] != 0xDB:  # the segments before the first quantization table
        markers.append(written[at + 1])
        at += 2 + int.from_bytes(written[at + 2:at + 4], "big")
    assert markers == [0xE0, 0xE1, 0xE2, 0xE2, 0xE2]  # JFIF, EXIF, then the profile's
    assert cv2.imdecode(np.frombuffer(written, np.uint8), cv2.IMREAD_UNCHANGED).shape == (48, 64, 3)


@pytest.mark.parametrize("suffix", [".avif", ".jp2", ".j2k"])
def test_a_still_avif_or_jpeg_2000_is_upscaled_as_a_picture(tmp_path, suffix):
    """They went to FFmpeg as video: -o out.png was refused ("is a video but the output ... is an
    image name") and the default output was an MP4 of one frame. An AVIF sequence stays a video."""
    from PIL import Image

    from srpipe.media import is_image_file

    pictures = [Image.new("RGB", (32, 24), (30 + 60 * index, 90, 150)) for index in range(3)]
    pictures[0].save(tmp_path / f"in{suffix}")
    done = run_srpipe("upscale", tmp_path / f"in{suffix}", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    out = read(tmp_path / "out.png")
    assert out.shape == (48, 64, 3) and np.abs(out.astype(int) - read(tmp_path / f"in{suffix}")[0, 0]).max() <= 1
    done = run_srpipe("upscale", tmp_path / f"in{suffix}", "-q")  # beside it, as a PNG
    assert done.returncode == 0, done.stderr.decode()
    assert read(tmp_path / "in_x2.png").shape == (48, 64, 3)
    if suffix == ".avif":
        pictures[0].save(tmp_path / "frames.avif", save_all=True, append_images=pictures[1:], duration=100)
        assert not is_image_file(str(tmp_path / "frames.avif"))


def write_tiff(path, pixels, extra_samples):
    """An uncompressed little-endian TIFF of ``pixels`` ((H, W, C), uint8 or uint16: grey and alpha,
    or RGBA) whose ExtraSamples tag says ``extra_samples`` (1: alpha premultiplied into the colour,
    2: straight), which Pillow does not write (it writes 2 whatever it is told)."""
    height, width, channels = pixels.shape
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    bits = 8 * pixels.dtype.itemsize
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, channels, None), (259, 3, 1, 1),
               (262, 3, 1, 1 if channels == 2 else 2), (273, 4, 1, None), (277, 3, 1, channels),
               (278, 4, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1), (338, 3, 1, extra_samples)]
    bits_said = struct.pack(f"<{channels}H", *[bits] * channels)
    ifd_size = 2 + 12 * len(entries) + 4
    after_ifd = bits_said if len(bits_said) > 4 else b""  # a value of over 4 bytes lies elsewhere, at its offset
    ifd = len(entries).to_bytes(2, "little")
    for tag, kind, count, value in entries:
        if tag == 258:
            field = bits_said if not after_ifd else struct.pack("<I", 8 + ifd_size)
        else:
            value = 8 + ifd_size + len(after_ifd) if tag == 273 else value
            field = struct.pack("<I" if kind == 4 else "<H2x", value)
        ifd += struct.pack("<HHI", tag, kind, count) + field
    path.write_bytes(b"II*\0" + (8).to_bytes(4, "little") + ifd + bytes(4) + after_ifd + data)


@pytest.mark.parametrize("made", ["pillow", "pillow-lzw", "premultiplied", "premultiplied-16"])
def test_an_rgba_tiffs_colour_is_not_multiplied_by_its_alpha(tmp_path, made):
    """OpenCV reads an 8-bit TIFF with alpha through libtiff's RGBA interface, which multiplies the
    colour by the alpha: a Pillow or GIMP TIFF came out darker, and one stored premultiplied was
    written premultiplied but marked straight (at 16 bits too, which OpenCV reads as stored)."""
    from PIL import Image

    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[...] = (200, 100, 50, 128)
    if made.startswith("pillow"):
        compression = "tiff_lzw" if made == "pillow-lzw" else None
        Image.fromarray(rgba, "RGBA").save(tmp_path / "in.tif", compression=compression)
    else:  # the colour multiplied by the alpha, as a compositor stores it
        peak = 65535 if made == "premultiplied-16" else 255
        premultiplied = np.full((16, 24, 4), (peak * 200 // 255 * 128 // 255, peak * 100 // 255 * 128 // 255,
                                              peak * 50 // 255 * 128 // 255, peak * 128 // 255))
        write_tiff(tmp_path / "in.tif", premultiplied.astype(np.uint16 if peak == 65535 else np.uint8), 1)
    for out in ("out.png", "out.tif"):
        done = run_srpipe("upscale", tmp_path / "in.tif", "-o", tmp_path / out, "-q")
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
        with Image.open(tmp_path / out) as image:
            assert image.mode == "RGBA" and image.size == (48, 32)
            assert np.abs(np.asarray(image).astype(int) - (200, 100, 50, 128)).max() <= 1, out
    # srpipe reads back its own TIFF as it wrote it
    done = run_srpipe("upscale", tmp_path / "out.tif", "-o", tmp_path / "again.png", "-q")
    assert done.returncode == 0, done.stderr.decode()
    again = read(tmp_path / "again.png") / (257 if made == "premultiplied-16" else 1)
    assert np.abs(again - (50, 100, 200, 128)).max() <= 1  # BGRA


@pytest.mark.parametrize("orientation, corner", [(6, (slice(1, 7), slice(25, 31))), (8, (slice(41, 47), slice(1, 7)))])
def test_a_turned_rgba_tiff_comes_out_upright(tmp_path, orientation, corner):
    """OpenCV could not read an 8-bit RGBA TIFF turned a quarter at all ("cannot read ... as an image"),
    and Pillow scrambles one it maps by name: its stored top left corner is shown top right (6) or
    bottom left (8)."""
    from PIL import Image

    picture = Image.new("RGBA", (24, 16), (200, 100, 50, 128))
    picture.paste((0, 0, 255, 255), (0, 0, 4, 4))
    picture.save(tmp_path / "in.tif", tiffinfo={0x0112: orientation})
    done = run_srpipe("upscale", tmp_path / "in.tif", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    out = read(tmp_path / "out.png").astype(int)
    blue = (out[..., 0] > 200) & (out[..., 2] < 50)  # BGRA
    assert out.shape == (48, 32, 4) and blue[corner].all() and blue.sum() < 100  # 64, and the edge bicubic blurs


@pytest.mark.parametrize("mode", ["LA", "La", "PA"])
def test_the_alpha_of_a_grey_or_palette_tiff_is_kept(tmp_path, mode):
    """OpenCV reads a grey TIFF with alpha as grey alone, and a palette one's as RGB: the alpha was
    dropped without a word. Grey with alpha is written as RGBA, as from a PNG."""
    from PIL import Image

    if mode == "La":  # premultiplied: 200 at alpha 128 stored as 100
        pixels = np.zeros((16, 24, 2), np.uint8)
        pixels[..., 0], pixels[..., 1] = 100, 128
        pixels[:, 12:] = 0
        write_tiff(tmp_path / "in.tif", pixels, 1)
    else:
        alpha = np.full((16, 24), 128, np.uint8)
        alpha[:, 12:] = 0
        if mode == "LA":
            picture = Image.fromarray(np.dstack((np.full((16, 24), 200, np.uint8), alpha)), "LA")
        else:
            picture = Image.new("PA", (24, 16))
            picture.putpalette([200, 200, 200] * 256)
            picture.putalpha(Image.fromarray(alpha))
        picture.save(tmp_path / "in.tif")
    done = run_srpipe("upscale", tmp_path / "in.tif", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    out = read(tmp_path / "out.png").astype(int)
    assert out.shape == (32, 48, 4)
    assert (np.abs(out[:, :20, 3] - 128) <= 1).all() and (out[:, 28:, 3] == 0).all()
    assert (np.abs(out[:, :20, :3] - 200) <= 1).all()


@pytest.mark.parametrize("damage", ["bad-text-checksum", "text-inflating-to-2-mb"])
def test_a_photos_orientation_and_profile_are_read_past_a_damaged_text_chunk(tmp_path, damage):
    """Pillow refused the whole header for an ancillary chunk libpng passes over (a bad checksum)
    or text past its limit: the photo came out sideways, without its profile or EXIF, without a word."""
    from PIL import Image, ImageCms, ImageFile

    exif = Image.Exif()
    exif[0x0112] = 6
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (48, 32), (200, 50, 50)).save(tmp_path / "in.png", exif=exif, icc_profile=profile)
    data = (tmp_path / "in.png").read_bytes()
    if damage == "bad-text-checksum":
        text = b"tEXt" + b"Comment\0hi"
        chunk = (len(text) - 4).to_bytes(4, "big") + text + bytes(4)
    else:
        text = b"zTXt" + b"Comment\0\0" + zlib.compress(b"A" * (2 << 20))
        chunk = (len(text) - 4).to_bytes(4, "big") + text + zlib.crc32(text).to_bytes(4, "big")
    (tmp_path / "in.png").write_bytes(data[:33] + chunk + data[33:])
    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # the 2 MB text is kept, past what Pillow reads by default
    try:
        with Image.open(tmp_path / "out.png") as image:
            assert image.size == (64, 96) and image.info["icc_profile"] == profile
            assert image.getexif()[0x0112] == 1
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_a_header_pillow_cannot_read_is_said_so(tmp_path):
    """Pillow refuses an iCCP chunk compressed by a method PNG has not (libpng passes it over):
    the orientation could not be read, and the photo came out as stored without a word."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (48, 32), (200, 50, 50)).save(tmp_path / "in.png", exif=exif)
    with_png_chunks(tmp_path / "in.png", (b"iCCP", b"profile\0\x01" + zlib.compress(b"x" * 200)))
    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "out.png", "-q")
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == [
        f"Warning: {tmp_path / 'in.png'}: Pillow cannot read its header: its EXIF orientation, colour profile, EXIF "
        "and density are left out, and the picture is taken as stored (a photo may lie turned)"]
    assert read(tmp_path / "out.png").shape == (64, 96, 3)


def test_an_orientation_in_exif_after_the_pngs_picture_is_applied(tmp_path):
    """A PNG's eXIf chunk may follow its picture's data, where Pillow reads it only as it decodes:
    the photo came out sideways (libpng, and so cv2.imread, turns it)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Test Camera"
    Image.new("RGB", (48, 32), (200, 50, 50)).save(tmp_path / "in.png")
    data, tags = (tmp_path / "in.png").read_bytes(), exif.tobytes()[len(b"Exif\0\0"):]
    chunk = len(tags).to_bytes(4, "big") + b"eXIf" + tags + zlib.crc32(b"eXIf" + tags).to_bytes(4, "big")
    (tmp_path / "in.png").write_bytes(data[:-12] + chunk + data[-12:])  # before IEND
    done = run_srpipe("upscale", tmp_path / "in.png", "-o", tmp_path / "out.jpg", "-q")
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.size == (64, 96)
        assert image.getexif()[0x0112] == 1 and image.getexif()[0x010F] == "Test Camera"


@pytest.mark.parametrize("given", ["opencv.tif", "camera.jpg"])
def test_no_density_is_written_where_the_input_states_none(tmp_path, given):
    """Pillow fills in a density where a file states none (1 for a TIFF without resolution tags,
    72 for a JPEG whose EXIF has no resolution), and srpipe wrote it as the input's."""
    from PIL import Image

    picture = np.random.default_rng(8).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    if given == "opencv.tif":
        cv2.imwrite(str(tmp_path / given), picture)
    else:
        exif = Image.Exif()
        exif[0x010F] = "Test Camera"  # and no XResolution
        Image.fromarray(picture).save(tmp_path / given, exif=exif)
    for out in ("out.png", "out.tif", "out.jpg"):
        done = run_srpipe("upscale", tmp_path / given, "-o", tmp_path / out, "-q")
        assert done.returncode == 0, done.stderr.decode()
        with Image.open(tmp_path / out) as image:
            assert image.size == (64, 48)
            if out == "out.jpg":  # JFIF's density with no unit: an aspect ratio (Pillow says 72 from the EXIF)
                assert image.info["jfif_unit"] == 0 and image.info["jfif_density"] == (1, 1)
            elif out == "out.tif":
                assert 282 not in image.tag_v2 and 283 not in image.tag_v2
            else:
                assert "dpi" not in image.info


def test_colour_under_no_alpha_stays_dark_when_made_straight():
    """A premultiplied TIFF's colour where alpha is 0 (a glow's light, or a sloppy writer's) became
    white (65535), which the upscaler then spread into the visible edge beside it."""
    from srpipe.images import _unpremultiply

    image = np.array([[[100, 50, 0, 0], [16000, 8000, 4000, 32768]]], np.uint16)
    _unpremultiply(image)
    assert image[0, 0].tolist() == [0, 0, 0, 0]
    assert image[0, 1].tolist() == [32000, 16000, 8000, 32768]


def test_a_damaged_header_read_leniently_leaves_pillow_strict(tmp_path):
    """Pillow's switch for reading past damage is the whole process's: it is off again after, and
    off for a header Pillow reads as it is."""
    from PIL import ImageFile

    from srpipe.images import image_header

    data = make_test_image(tmp_path / "plain.png", width=12, height=8).read_bytes()
    text = b"Comment\0hi"
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + b"\0\0\0\0"  # its checksum wrong
    (tmp_path / "badcrc.png").write_bytes(data[:33] + chunk + data[33:])
    assert image_header(str(tmp_path / "badcrc.png")).size == (12, 8)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
