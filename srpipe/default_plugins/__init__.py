"""srpipe's built-in features, each a plugin registered exactly as a third-party one is.

``srpipe.plugins.DEFAULT_PLUGINS`` lists them. A feature with several modules is a package
whose ``__init__`` holds its hooks; the hooks import the feature's code only when called, so
that starting srpipe stays cheap. The core (``srpipe.*`` outside this package) never imports
from here: ``SRPIPE_DISABLE_PLUGINS`` removes a feature without breaking the rest.
"""
