"""The one exception type users see: its message is the whole one-line error the CLI prints; and the one
place an optional dependency is imported, with the extra that installs it named when it is missing."""


class ForgetlabError(Exception):
    """A problem with the user's input or environment, worded as what to fix."""


class ConfigError(ForgetlabError):
    """An impossible or unknown configuration value."""


class DataError(ForgetlabError):
    """Missing, truncated or corrupt dataset files."""


def require(module: str, extra: str, purpose: str):
    """The optional dependency ``module``, imported; or one ForgetlabError naming the extra that installs it
    (``pip install 'forgetlab[EXTRA]'``), for ``purpose`` (what the user asked for, e.g. "--executor ray")."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ForgetlabError(f"{purpose} needs the {package} package: pip install 'forgetlab[{extra}]'") from None
