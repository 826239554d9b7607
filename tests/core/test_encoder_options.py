"""x264's and x265's presets are checked before the encoder opens: every spelling the encoder
takes passes, and what it refuses is one line (the encoder would print to the terminal itself)."""

import io

import av
import pytest

from srpipe.errors import SrpipeError
from srpipe.video import encoder_options

TAKEN = {"libx264": ["medium", "MEDIUM", "Slow", "veryfast", "0", "9"], "libx265": ["medium", "placebo", "0", "5"]}
REFUSED = {"libx264": ["warp", "10", "-1"], "libx265": ["MEDIUM", "Slow", "10"]}


def opens(codec: str, options: dict) -> bool:
    container = av.open(io.BytesIO(), "w", format="matroska")
    stream = container.add_stream(codec, rate=25, options=options)
    stream.width = stream.height = 64
    stream.pix_fmt = "yuv420p"
    try:
        container.start_encoding()
    except av.FFmpegError:
        return False
    return True


@pytest.mark.parametrize("codec, preset", [(codec, preset) for codec, presets in TAKEN.items() for preset in presets])
def test_a_preset_the_encoder_takes_is_passed_on(codec, preset):
    options = encoder_options(codec, 18, preset, {})
    assert options["preset"] == preset
    assert opens(codec, options)


@pytest.mark.parametrize("codec, preset", [(codec, p) for codec, presets in REFUSED.items() for p in presets])
def test_a_preset_the_encoder_refuses_is_one_line(codec, preset):
    assert not opens(codec, {"preset": preset})
    with pytest.raises(SrpipeError, match=f"--preset {preset} is not a {codec} preset; use one of ultrafast,"):
        encoder_options(codec, 18, preset, {})
