"""Small networks, their checkpoints and one trainer for every task.

Import from the modules (``srpipe.nn.espcn``, ``srpipe.nn.checkpoint``, ...): this package
imports nothing itself, so that ``srpipe.nn.espcn_config`` loads without torch."""
