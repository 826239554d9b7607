"""Every hook srpipe calls. Plugins implement them with ``@srpipe.hookimpl``.

Hook names are the contract with third-party plugins: add hooks, never change one.
"""

import pluggy

PROJECT = "srpipe"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register):
    """Register upscalers.

    :param register: call ``register(ModelSpec(...))`` once per model
        (:class:`srpipe.models.ModelSpec`). Keep this cheap: load weights in
        ``ModelSpec.load``, not here.
    :return: nothing; every plugin's implementation is called.
    """


@hookspec
def register_commands(cli):
    """Add commands to the command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)``.
    :return: nothing; every plugin's implementation is called.
    """


@hookspec(firstresult=True)
def open_source(location, options):
    """Open an input for reading frames.

    :param location: what the user gave as INPUT: a path, a URL, ``-`` for
        standard input, or any scheme a plugin understands (``camera:0``).
    :param options: :class:`srpipe.media.SourceOptions`.
    :return: a :class:`srpipe.media.Source`, or ``None`` to let the next plugin
        try. The first non-``None`` result wins; plugins registered later are
        asked first, the built-in PyAV opener last.
    """


@hookspec(firstresult=True)
def open_sink(location, source, options):
    """Open an output for writing upscaled frames.

    :param location: the output path, or ``-`` for standard output.
    :param source: the :class:`srpipe.media.Source` being upscaled (its kind,
        streams to copy, timing and colour information).
    :param options: :class:`srpipe.media.SinkOptions`.
    :return: a :class:`srpipe.media.Sink`, or ``None`` to let the next plugin
        try. The first non-``None`` result wins.
    """


@hookspec
def register_backends(register):
    """Register inference backends for neural upscalers (``--backend``).

    :param register: call ``register(Backend(...))`` once per backend
        (:class:`srpipe.backends.Backend`). Keep this cheap: import the engine in
        ``is_available`` and ``prepare``, not here.
    :return: nothing; every plugin's implementation is called.
    """


@hookspec
def register_networks(register):
    """Register network architectures, so that checkpoints name them (``arch``) and
    ``srpipe.nn.checkpoint`` rebuilds them.

    :param register: call ``register(NetworkSpec(...))`` once per architecture
        (:class:`srpipe.nn.registry.NetworkSpec`). Keep this cheap: ``NetworkSpec.classes``
        imports torch and the network's module when a checkpoint needs it.
    :return: nothing; every plugin's implementation is called.
    """
