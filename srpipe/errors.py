"""Errors a user can cause: the CLI prints them as one ``Error:`` line and exits 1."""


class SrpipeError(Exception):
    """A problem with the user's input, options or environment, with a hint on what to do."""


class CheckpointError(SrpipeError):
    """A file is not a usable srpipe checkpoint."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded or misbehaved; it was skipped."""


class NonFiniteOutput(SrpipeError):
    """A model computed NaN or infinite values (broken weights)."""
