"""One-line reports of configuration errors (Hydra/OmegaConf's own and the project's range checks)."""
from __future__ import annotations

from omegaconf.errors import OmegaConfBaseException

from measure.config import ConfigError

CONFIG_ERRORS = (ConfigError, ValueError, OmegaConfBaseException)


def config_error_line(err: BaseException) -> str:
    """The innermost project message if there is one, else the error's first line, with its full key."""
    inner = err
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__
        if isinstance(inner, ConfigError):
            return str(inner)
    if isinstance(err, ConfigError):
        return str(err)
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    key = getattr(err, "full_key", None)
    return f"{key}: {msg}" if key and key not in msg else msg
