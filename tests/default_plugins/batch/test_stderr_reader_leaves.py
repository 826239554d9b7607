"""A reader of standard error that leaves (`srpipe batch IN OUT 2>&1 | head -1`) takes the
progress with it, not the work: the batch goes on and its exit status tells how it went."""

import json
import subprocess
import sys

from srpipe.testing import make_test_image


def test_a_batch_outlives_the_reader_of_its_progress(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    names = [f"v{i}.jpg" for i in range(4)]
    for name in names:
        make_test_image(inputs / name)
    (inputs / "broken.jpg").write_text("not an image")
    process = subprocess.Popen([sys.executable, "-m", "srpipe", "batch", inputs, out, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stderr.close()  # the reader leaves before the first line of progress
    stdout, _ = process.communicate(timeout=300)
    assert process.returncode == 1  # broken.jpg failed; the rest were done
    report = json.loads(stdout)
    assert (report["done"], report["failed"]) == (4, 1)
    assert all((out / name).with_suffix(".png").is_file() for name in names)
