#!/usr/bin/env python
"""Write the 80 generated pictures of line art and screen text that the fast network and its
bit-rate copies train on (``quantize.line_art_image``, seeds 1000-1079, 320x240) into a folder:

    python scripts/make_line_art.py RUNS/lineart
"""

import sys
from pathlib import Path

import cv2

from srpipe.default_plugins.espcn.quantize import line_art_image

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(80):
        cv2.imwrite(str(folder / f"art{i:03d}.png"), line_art_image(1000 + i, 320, 240))
