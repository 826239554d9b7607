"""Small networks, their checkpoints and one trainer for every task."""

from srpipe.nn.checkpoint import CheckpointError, load_checkpoint, network_from_checkpoint, save_checkpoint
from srpipe.nn.espcn import ESPCN, ESPCNConfig
from srpipe.nn.registry import build_network

__all__ = [
    "ESPCN",
    "ESPCNConfig",
    "CheckpointError",
    "build_network",
    "load_checkpoint",
    "network_from_checkpoint",
    "save_checkpoint",
]
