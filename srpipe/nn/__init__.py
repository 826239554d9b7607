"""The network core: checkpoints, the registry of architectures that plugins extend, the one
trainer, and turning pictures into network input. Networks themselves live with their features
(``srpipe.default_plugins.espcn.network``, ``...classifier.networks``).

Import from the modules: this package imports nothing itself, so that loading one module does
not import torch through another."""
