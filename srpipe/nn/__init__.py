"""Small networks, their checkpoints and one trainer for every task.

Import from the modules (``srpipe.default_plugins.espcn.network``, ``srpipe.nn.checkpoint``, ...): this package
imports nothing itself, so that ``srpipe.default_plugins.espcn.config`` loads without torch."""
