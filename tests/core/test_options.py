"""One option vocabulary: every command's shared options (srpipe/cli/options.py) have the same
flags, type, default and help wherever they appear."""

import click
import pytest

from srpipe.cli import build_cli, options

# Where a command may differ from the shared definition, and why.
EXCEPTIONS = {
    ("srpipe train espcn", "--scale"): "the scale a network is trained for: required, 2, 3 or 4",
    ("srpipe live", "--preset"): "the recording's encoder keeps up with the camera beside the model: ultrafast",
}
# The commands whose -s runs a network at its own scale: its help says so, not upscale's "any factor".
WHOLE_SCALE = {"srpipe live", "srpipe bench", "srpipe eval", "srpipe inspect model"}


def reference():
    """The shared options as options.py defines them, by their long flag."""

    @click.command()
    @options.size_options
    @options.weights_option
    @options.device_option
    @options.backend_option
    @options.quiet_option
    @options.json_option
    @options.overwrite_option
    @options.codec_options
    def command(**kwargs):
        pass

    return {param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]: param for param in command.params}


def walk(command, path):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}")


def describe(param):
    kind = type(param.type).__name__
    choices = tuple(getattr(param.type, "choices", ()) or ())
    bounds = (getattr(param.type, "min", None), getattr(param.type, "max", None))
    return {"flags": sorted(param.opts + param.secondary_opts), "type": (kind, choices, bounds),
            "default": param.default, "help": param.help, "is_flag": param.is_flag}


def test_shared_options_mean_the_same_everywhere():
    shared = {flag: describe(param) for flag, param in reference().items()}
    seen, problems = {}, []
    for path, command in walk(build_cli(), "srpipe"):
        for param in command.params:
            flag = next((f for f in param.opts if f in shared), None)
            if flag is None or (path, flag) in EXCEPTIONS:
                continue
            seen.setdefault(flag, []).append(path)
            got, want = describe(param), dict(shared[flag])
            if flag == "--scale" and path in WHOLE_SCALE:
                want["help"] = options.SCALE_HELP
            if param.multiple:  # bench measures several: a tuple of the one default, help extended
                want["default"] = (want["default"],)
                got["help"] = got["help"][: len(want["help"])]
            for key in want:
                if got[key] != want[key]:
                    problems.append(f"{path} {flag}: {key} is {got[key]!r}, shared {want[key]!r}")
    assert not problems, "\n".join(problems)
    # the list: each is shared by the commands it applies to
    assert set(seen["--device"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench", "srpipe live", "srpipe eval",
                                     "srpipe classify", "srpipe train classifier"}
    assert set(seen["--weights"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench", "srpipe live", "srpipe eval",
                                      "srpipe classify", "srpipe classifier embed"}
    assert set(seen["--scale"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench", "srpipe live", "srpipe eval",
                                    "srpipe inspect model"}
    assert set(seen["--backend"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench", "srpipe live", "srpipe eval"}
    assert set(seen["--quiet"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench"}
    assert set(seen["--json"]) >= {"srpipe upscale", "srpipe batch", "srpipe bench", "srpipe eval", "srpipe classify",
                                   "srpipe models list", "srpipe models backends", "srpipe plugins",
                                   "srpipe inspect model"}
    for flag in ("--codec", "--crf"):
        assert set(seen[flag]) == {"srpipe upscale", "srpipe batch", "srpipe live"}, flag
    assert set(seen["--preset"]) == {"srpipe upscale", "srpipe batch"}  # and live's, an exception above
    assert set(seen["--overwrite"]) == {"srpipe upscale", "srpipe batch", "srpipe live", "srpipe train espcn",
                                        "srpipe inspect model", "srpipe inspect kernels", "srpipe classifier embed",
                                        "srpipe train classifier"}


def test_no_command_reuses_a_shared_flag_for_something_else():
    """A flag of the vocabulary (or its short form) is never another option's name."""
    shared = reference()
    short = {opt for param in shared.values() for opt in param.opts if not opt.startswith("--")}
    for path, command in walk(build_cli(), "srpipe"):
        for param in command.params:
            if (path, next((f for f in param.opts if f in shared), None)) in EXCEPTIONS:
                continue
            if any(opt in shared for opt in param.opts):
                continue
            assert not set(param.opts) & short, f"{path}: {param.opts} takes a shared short flag"


@pytest.mark.parametrize("text, value", [("2", 2), ("2.0", 2), ("1.5", 1.5), ("3.25", 3.25)])
def test_scale_parses_whole_and_fractional_factors(text, value):
    got = options.SCALE.convert(text, None, None)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["0", "-2", "1", "0.5", "two", "1.23456"])
def test_scale_refuses_what_is_no_factor(text):
    with pytest.raises(click.BadParameter):
        options.SCALE.convert(text, None, None)


def test_each_command_s_help_speaks_of_that_command():
    """Shared help texts said what only other commands do: live's -s that upscale takes 1.5, eval's
    --device what batch does on several GPUs, upscale's -q "in a batch", live's --exact a picture's
    views. And --backend left out a backend that 'srpipe models backends' lists."""
    from srpipe.plugins import collect_backends, get_plugin_manager

    backends = [backend.name for backend in collect_backends(get_plugin_manager())]
    assert "torch-compile" in backends
    for path, command in walk(build_cli(), "srpipe"):
        for param in command.params:
            text = param.help or ""
            assert "srpipe batch" not in text and "in a batch" not in text, (path, param.name)
            if param.name == "scale" and path not in ("srpipe upscale", "srpipe batch"):
                assert "1.5" not in text, path
            if param.name == "exact" and path == "srpipe live":
                assert "views" not in text
            if param.name in ("backend", "backends"):
                assert all(name in text for name in backends), (path, text)


def test_help_states_the_output_names_and_the_workers():
    from srpipe.video import KEPT_SUFFIXES

    commands = dict(walk(build_cli(), "srpipe"))
    output = next(p for p in commands["srpipe upscale"].params if p.name == "output").help
    assert all(suffix in output for suffix in KEPT_SUFFIXES) and ".png" in output and ".mp4" in output
    batch = commands["srpipe batch"]
    assert all(suffix in batch.help for suffix in KEPT_SUFFIXES)
    jobs = next(p for p in batch.params if p.name == "jobs").help
    assert "one per GPU where --device cuda" in jobs
    assert "interlaced" in commands["srpipe live"].help


@pytest.mark.parametrize("args, message", [
    (["upscale", "in.mp4", "-s", "2", "--width", "200"], "give either --scale or --width/--height, not both"),
    (["batch", "in", "out", "--height", "200", "-s", "2"], "give either --scale or --width/--height, not both"),
    (["upscale", "in.mp4", "--batch-size", "0"], "0 is not in the range x>=1"),
    (["upscale", "in.mp4", "-s", "0.5"], "0.5 does not enlarge; srpipe upscales by factors above 1"),
    (["batch", "in", "out", "--jobs", "0"], "0 is not in the range x>=1"),
    (["batch", "in", "out", "--address", "auto"], "--address is for --engine ray"),
    (["upscale", "in.png", "-m", "espcn", "--views", "2", "--exact"], "--exact runs the network once"),
    (["live", "--source", "x.mp4", "-s", "1.5", "--no-window"], "live takes a whole scale"),
    (["eval", "-m", "bicubic", "--data", ".", "-s", "2.5"], "eval takes a whole scale"),
    (["bench", "-s", "1.5"], "bench takes a whole scale"),
    (["eval", "-m", "bicubic", "--data", "imgs", "--video", "clip.mp4"], "give either --data (a folder of images) or"),
    (["eval", "-m", "bicubic"], "give either --data (a folder of images) or --video (a clip)"),
    (["eval", "-m", "bicubic", "--video", "clip.mp4", "--crfs", "99"], "x264 takes crf values from 0 (lossless) to 51"),
    (["eval", "-m", "bicubic", "--video", "clip.mp4", "--crfs", "abc"], "'abc' is not comma-separated integers"),
    (["eval", "-m", "bicubic", "--video", "clip.mp4", "--crfs", "-1"], "x264 takes crf values from 0 (lossless)"),
    (["eval", "-m", "bicubic", "--data", "imgs", "--score", "both"], "--score both goes with --video"),
    (["eval", "-m", "bicubic", "--data", "imgs", "--degrade", "x264:crf=99"], "x264 crf must be between 0"),
    (["eval", "-m", "bicubic", "--data", "imgs", "--degrade", "png"], "unknown degradation 'png'"),
    (["train", "espcn", "--data", "imgs", "-s", "2", "--temporal", "3", "-o", "t.pt"],
     "--temporal trains on clips: add --degrade video"),
    (["inspect", "espcn-x2", "--input-size", "1,2"], "'1,2' is not C,H,W with three positive integers"),
    (["inspect", "nosuch", "--input-size", "1,20000,2"], "is larger than inspect runs: at most 64 channels"),
    (["live", "--source", "clip.mp4", "--no-window", "--record", "-"], "--record writes a file"),
    (["live", "--source", "clip.mp4", "--no-window", "--record", "out.png"], "--record out.png: live records video"),
    (["live", "--source", "clip.mp4", "--no-window", "--record", ""], "is empty (an unset shell variable?)"),
    (["upscale", "-"], "standard input is a stream; name the output with -o"),
    (["upscale", "http://127.0.0.1:9/clip.ts"], "http://127.0.0.1:9/clip.ts is a stream; name the output with -o"),
])
def test_a_command_line_that_cannot_work_is_a_usage_error(cli_run, args, message):
    """Options that contradict each other or a value out of range, whatever the files: exit 2 with
    click's usage line, before any file is read (these name files that do not exist)."""
    result = cli_run(*args)
    assert result.exit_code == 2 and "Usage: " in result.stderr and message in result.stderr, result.output
