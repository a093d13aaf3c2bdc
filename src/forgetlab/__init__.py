"""forgetlab: catastrophic forgetting, studied fast. See README.md."""
from .api import make_config, run
from .config import RunConfig
from .errors import ForgetlabError
from .hooks import Context, Hook
from .presets import PRESETS
from .results import Results, load

__all__ = ["run", "make_config", "load", "RunConfig", "Results", "Hook", "Context", "PRESETS", "ForgetlabError"]
__version__ = "0.1.0"
