"""The error every setting check raises: its message names the variable to fix."""


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which variable to fix."""
