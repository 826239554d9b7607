"""``srpipe train espcn``."""

from pathlib import Path

import click

from srpipe.errors import SrpipeError


@click.command("espcn")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(file_okay=False),
              help="Folder of training images (repeat for several).")
@click.option("--val", "val", multiple=True, type=click.Path(file_okay=False),
              help="Folder of validation images, scored each epoch (repeat for several).")
@click.option("-s", "--scale", type=click.Choice(["2", "3", "4"]), required=True)
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--steps-per-epoch", type=int, default=500, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Patches per step.")
@click.option("--preset", type=click.Choice(["shipped", "fsrcnn", "paper"]), default="shipped", show_default=True,
              help="shipped: the network of the shipped weights (64-24x5-64, PReLU, residual); "
                   "fsrcnn: a narrower 56-12x5-56; paper: 5x5x64, 3x3x32, tanh.")
@click.option("--degrade", type=click.Choice(["none", "video"]), default="none", show_default=True,
              help="video: train on short pan clips of each image, shrunk with several kernels (with and "
                   "without antialiasing) and really encoded by x264 at random crf, as video arrives.")
@click.option("--holdout", type=int, default=0, show_default=True,
              help="With --degrade video: keep this many images of the last --data folder out of training "
                   "and score them each epoch, clean and compressed.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
@click.option("--resume", is_flag=True, help="Continue the run from its last checkpoint.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Weights file to write; the run's checkpoints and log go to OUTPUT.run/.")
def train_espcn(data, val, scale, epochs, steps_per_epoch, batch_size, preset, degrade, holdout, threads, resume,
                output):
    """Train an ESPCN upscaler on any folder of images.

    Random crops with flips and rotations; the low-resolution input is made
    by MATLAB-style antialiased bicubic downscaling (or, with --degrade video,
    by several kernels and x264), on limited-range luma (the convention video
    uses). Checkpoints every epoch; --resume continues.

    \b
    Example:
      srpipe train espcn --data photos/ --val Set5/ -s 2 --epochs 16 -o my_x2.pt
      srpipe train espcn --data photos/ --degrade video --holdout 10 -s 2 -o my_video_x2.pt
      srpipe upscale clip.mp4 -m espcn --weights my_x2.pt
    """
    from srpipe.sr.training import main

    for folder in data + val:
        if not Path(folder).is_dir():
            raise SrpipeError(f"image folder {folder} does not exist")
    if holdout and degrade != "video":
        raise SrpipeError("--holdout needs --degrade video")
    run_dir = Path(output).with_name(Path(output).name + ".run")
    argv = ["--scale", scale, "--preset", preset, "--epochs", str(epochs), "--steps-per-epoch", str(steps_per_epoch),
            "--batch", str(batch_size), "--last-lr-mult", "0.1", "--threads", str(threads),
            "--out", str(run_dir), "--export", output,
            "--degrade", degrade, "--holdout", str(holdout), "--train", *data, "--val", *val]
    main(argv + (["--resume"] if resume else []))
