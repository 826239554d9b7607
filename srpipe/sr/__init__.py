"""Super-resolution: MATLAB-compatible data and scoring, and the ESPCN upscaler."""

from srpipe.sr.evaluate import evaluate_folder
from srpipe.sr.imresize import imresize
from srpipe.sr.upscaler import ESPCNUpscaler, shipped_weights

__all__ = ["ESPCNUpscaler", "evaluate_folder", "imresize", "shipped_weights"]
