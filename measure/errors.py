"""Bad input ends in one line, never a traceback: what every entry point (`python -m measure | rlhf | rlhf.study`)
shares to get there.

- ``config_error_line(err)``: the one line of a Hydra/OmegaConf error or of a schema's range check.
- ``typed_config(dcfg)``: the composed DictConfig as the app's dataclasses, after refusing every setting the
  schema lacks. Hydra lets a ``+`` add any key to a structured config (``+sampling.temprature=0.7`` composes,
  and ``OmegaConf.to_object`` keeps it as a stray attribute nobody reads), so the composed tree is checked
  against the dataclasses, with or without ``+``. ``+hydra.*`` keys are not in the job's config, and a ``+group``
  addition passes as long as what it adds is in the schema.
- ``refuse_secret_overrides(overrides)``: a setting whose name says key/token/secret/password is refused on the
  command line, with the environment variable to use instead (overrides land in ``.hydra/overrides.yaml``,
  ``results.json`` and the log). ``is_secret_name`` is the one rule, also used by the wandb config scrubber.
- ``command_line_app``: wraps an app's ``@hydra.main`` function; secrets in ``sys.argv`` are refused before Hydra
  writes anything, and Ctrl-C anywhere prints ``INTERRUPTED`` and exits 130.
- ``bad_input_exits(log)``: inside the task function, a ``ConfigError`` (one line by construction: a range, a
  file and line, a model that does not fit its config) is logged as it is and the run exits 2.

toy_bandit stands alone (it imports neither measure nor rlhf), so it keeps its own copy of the unknown-key
check, the secret rule and the Ctrl-C line (toy_bandit/cli.py); tests/test_bad_input.py checks the copies agree.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import logging
import re
import sys
from typing import Iterator, List, Sequence, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from measure.config import ConfigError

CONFIG_ERRORS = (ConfigError, ValueError, OmegaConfBaseException)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
INTERRUPTED = "interrupted; rerun the same command to continue"

# a name is a credential when one of its words is one of these, or when "key" is a word of a name of two or more
# words (api_key, wandb_key, access_key). A bare `key` is a label (a probe prompt's short name), not a secret.
SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "apikey", "credential", "credentials"})
# where a credential belongs instead: the first env var whose words meet the setting's words
SECRET_ENV = (({"wandb"}, "WANDB_API_KEY"), ({"hf", "hub", "huggingface", "model"}, "HF_TOKEN"))
# `name=` or `name:` inside an override (list and dict values can hold further overrides: demo.measure_overrides)
_NAME_BEFORE_VALUE = re.compile(r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*[=:]")


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


# ---------------------------------------------------------------- settings the schema lacks

def unknown_keys(node, prefix: str = "") -> List[Tuple[str, List[str]]]:
    """(full key, the names the schema has there) for every key of the composed ``node`` that its dataclass
    lacks, lists of dataclasses included. Dict-typed fields (``world.mix``) accept any key; values are not
    resolved (an interpolation is checked by OmegaConf itself)."""
    found: List[Tuple[str, List[str]]] = []
    if not isinstance(node, (DictConfig, ListConfig)) or node._is_none() or node._is_missing() \
            or node._is_interpolation():
        return found
    if isinstance(node, ListConfig):
        for i in range(len(node)):
            found += unknown_keys(node._get_node(i), f"{prefix}[{i}]")
        return found
    schema = OmegaConf.get_type(node)
    names = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        full = f"{prefix}.{key}" if prefix else str(key)
        if names is not None and key not in names:
            found.append((full, names))
        else:
            found += unknown_keys(node._get_node(key), full)
    return found


def refuse_unknown_keys(dcfg) -> None:
    """ConfigError naming the first setting the schema lacks (and the nearest one it has)."""
    unknown = unknown_keys(dcfg)
    if not unknown:
        return
    full, names = unknown[0]
    parent, _, key = full.rpartition(".")
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"did you mean {parent + '.' if parent else ''}{near[0]}? " if near else ""
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    raise ConfigError(f"{full}: no such setting{more}; {hint}a leading '+' cannot add a setting the schema lacks "
                      f"(known here: {', '.join(names)})")


def typed_config(dcfg):
    """The composed config as the app's dataclasses (range checks run in their ``__post_init__``), after
    refusing every setting the schema lacks."""
    refuse_unknown_keys(dcfg)
    return OmegaConf.to_object(dcfg)


# ---------------------------------------------------------------- secrets

def name_words(name: str) -> List[str]:
    """The lower-case words of one key name: split at `_`, `-` and lower-to-upper case changes."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def is_secret_name(name: str) -> bool:
    """Whether a key name says it holds a credential (whole words: `api_key`, `hf_token`, `WANDB_API_KEY`; not
    `card_tokens`, not a bare `key`)."""
    words = name_words(name)
    return any(w in SECRET_WORDS for w in words) or ("key" in words and len(words) > 1)


def secret_env_var(path: str) -> str:
    words = {w for part in path.split(".") for w in name_words(part)}
    for topic, env in SECRET_ENV:
        if words & topic:
            return env
    return "the tool's own (WANDB_API_KEY for wandb, HF_TOKEN for the hub)"


def _setting_paths(override: str) -> List[str]:
    """The setting an override names and, when its value is a list or dict (which may hold further overrides, as
    demo.measure_overrides does), every `name=` or `name:` inside it. A plain value (a prompt) is not searched."""
    key, sep, value = override.partition("=")
    paths = [key.lstrip("+~")]
    if sep and value.lstrip()[:1] in ("[", "{"):
        paths += _NAME_BEFORE_VALUE.findall(value)
    return paths


def refuse_secret_overrides(overrides: Sequence[str]) -> None:
    """ConfigError for the first override that sets a credential-named setting (at any depth of its key, or
    inside a list or dict value that holds overrides). The message never repeats the value."""
    for override in overrides:
        for path in _setting_paths(str(override)):
            if any(is_secret_name(part) for part in path.split(".")):
                raise ConfigError(
                    f"{path}: secrets are refused on the command line (an override is written to "
                    f".hydra/overrides.yaml, results.json and the log); set the environment variable "
                    f"{secret_env_var(path)} instead")


# ---------------------------------------------------------------- entry points

def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def bad_input_exits(log: logging.Logger) -> Iterator[None]:
    """Inside a task function: a ConfigError is logged as its one line and the run exits 2. In a multirun the
    error is re-raised after its line, so that the launcher records the failed job and runs the others."""
    try:
        yield
    except ConfigError as err:
        log.error("%s", err)
        if _multirun():
            raise
        sys.exit(EXIT_BAD_INPUT)


def command_line_app(app: str):
    """Decorator for an app's ``@hydra.main`` function (put it above), logging to the logger ``app``.

    Before Hydra composes anything (it writes ``.hydra/`` first), a credential on the command line is refused in
    one line; and Ctrl-C, wherever it lands, prints ``INTERRUPTED`` (to the job's log when it has one) and exits
    130. Resuming is the apps' own: sampling, pretraining and PPO continue from their progress files and
    checkpoints."""
    log = logging.getLogger(app)

    def decorate(hydra_main):
        @functools.wraps(hydra_main)
        def run(*args, **kwargs):
            try:
                refuse_secret_overrides(sys.argv[1:])
            except ConfigError as err:
                log.error("config error: %s", err)
                sys.exit(EXIT_BAD_INPUT)
            try:
                return hydra_main(*args, **kwargs)
            except KeyboardInterrupt:
                log.error(INTERRUPTED)
                sys.exit(EXIT_INTERRUPTED)

        return run

    return decorate
