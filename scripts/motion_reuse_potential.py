"""How many of the tiles tile reuse computes again could take the previous output moved by whole
pixels instead (issue #24's per-block motion reuse): an upper bound, measured before building it.

For each frame of a clip, the tiles due (a pixel changed by more than the threshold within the
receptive radius of the tile, as :class:`srpipe.reuse.TileReuse` decides) are tried against every
whole-pixel move up to ``--reach``: a tile could reuse the output moved so where its whole support
(the tile and the radius around it, inside the frame) matches the kept input moved so within the
threshold, the same test as reuse in place. The decoder's motion vectors would only pick among
these moves, so this bounds what they could give. The kept input follows the frames as tile reuse
keeps it (changed pixels take their new values; a frame with more than ``full_share`` of its tiles
due starts afresh), without its pan following and creep test.

    python scripts/motion_reuse_potential.py clip.mp4 [more.mp4 ...] --reach 8 --threshold 4
"""

import argparse

import av
import cv2
import numpy as np

from srpipe.reuse import ReusePolicy, _shifted, _tile_max


def potential(path: str, reach: int, threshold: int, tile: int, radius: int) -> tuple[int, float, float]:
    """(frames, share of tiles due, share of the due tiles a whole-pixel move could serve), of the tiles
    away from the frame's edges."""
    support = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    moves = [(dx, dy) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1) if dx or dy]
    basis, frames, due_tiles, served_tiles, all_tiles = None, 0, 0, 0, 0
    with av.open(path) as container:
        for frame in container.decode(video=0):
            y = frame.to_ndarray(format="gray")
            if basis is None:
                basis = y.copy()
                continue
            changed = cv2.absdiff(y, basis) > threshold
            due = _tile_max(cv2.dilate(changed.view(np.uint8), support), tile) > 0
            # Tiles whose support lies inside the frame wherever it moves (a margin of tiles): the
            # output near an edge was computed with the network's padding there
            margin = -(-(radius + reach) // tile)
            inside = np.zeros_like(due)
            inside[margin:due.shape[0] - margin, margin:due.shape[1] - margin] = True
            served = np.zeros_like(due)
            for dx, dy in moves:
                mismatch = cv2.absdiff(y, _shifted(basis, dx, dy)) > threshold
                served |= _tile_max(cv2.dilate(mismatch.view(np.uint8), support), tile) == 0
            frames += 1
            due_tiles += int((due & inside).sum())  # only those a move could serve count, both sides
            served_tiles += int((served & due & inside).sum())
            all_tiles += int(inside.sum())
            if due.mean() > ReusePolicy.full_share:
                basis = y.copy()
            else:
                np.copyto(basis, y, where=changed)
    return frames, due_tiles / max(all_tiles, 1), served_tiles / max(due_tiles, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--reach", type=int, default=8, help="largest move tried, in LR pixels each way")
    parser.add_argument("--threshold", type=int, default=ReusePolicy.threshold, help="8-bit code values")
    parser.add_argument("--tile", type=int, default=ReusePolicy.tile)
    parser.add_argument("--radius", type=int, default=7, help="the network's receptive radius (shipped: 7)")
    args = parser.parse_args()
    for path in args.clips:
        frames, due, served = potential(path, args.reach, args.threshold, args.tile, args.radius)
        print(f"{path}: {frames} frames; tiles due {due:.1%}; of those, served by a whole-pixel move "
              f"up to {args.reach}: {served:.1%}")


if __name__ == "__main__":
    main()
