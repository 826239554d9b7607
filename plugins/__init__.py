"""srpipe's built-in plugins, each shaped like a third-party plugin module."""
