"""``srpipe live``: a camera or stream upscaled in real time, in a window or headless.

A reader thread puts each decoded frame into a one-slot handoff (a newer frame
replaces an older one, which is counted as dropped); the loop upscales the
newest frame, draws it beside the bicubic upscale and shows, records and
measures it.
"""
