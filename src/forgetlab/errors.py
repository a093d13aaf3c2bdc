"""The one exception type users see: its message is the whole one-line error the CLI prints."""


class ForgetlabError(Exception):
    """A problem with the user's input or environment, worded as what to fix."""


class ConfigError(ForgetlabError):
    """An impossible or unknown configuration value."""


class DataError(ForgetlabError):
    """Missing, truncated or corrupt dataset files."""
