"""Bad input ends in one line: the toy bandit's copy of what ``measure.errors`` gives the other apps.

The toy bandit imports neither measure nor rlhf (numpy, hydra and wandb only), so it keeps its own copy of the
three checks every entry point makes; tests/test_bad_input.py checks that both copies decide the same way.

- ``typed_config(dcfg)``: refuses every setting the schema lacks, with or without ``+`` (Hydra lets
  ``+rules.ppo_kl.bta=0.3`` compose, and ``OmegaConf.to_object`` would keep it as an attribute nobody reads).
- secrets: a setting whose name says key/token/secret/password is refused on the command line.
- Ctrl-C: ``INTERRUPTED`` in one line, exit 130.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import re
import sys
from typing import List, Sequence, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130
INTERRUPTED = "interrupted; rerun the same command to continue"
SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "apikey", "credential", "credentials"})
_NAME_BEFORE_VALUE = re.compile(r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*[=:]")


def unknown_keys(node, prefix: str = "") -> List[Tuple[str, List[str]]]:
    """(full key, the names the schema has there) for every key of ``node`` that its dataclass lacks."""
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


def typed_config(dcfg):
    """``OmegaConf.to_object(dcfg)`` after a ValueError naming the first setting the schema lacks."""
    unknown = unknown_keys(dcfg)
    if unknown:
        full, names = unknown[0]
        parent, _, key = full.rpartition(".")
        near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f"did you mean {parent + '.' if parent else ''}{near[0]}? " if near else ""
        raise ValueError(f"{full}: no such setting; {hint}a leading '+' cannot add a setting the schema lacks "
                         f"(known here: {', '.join(names)})")
    return OmegaConf.to_object(dcfg)


def is_secret_name(name: str) -> bool:
    """Whole words of a key name: `api_key`, `hf_token`, `WANDB_API_KEY` are credentials; `card_tokens`, `key` not."""
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))) if w]
    return any(w in SECRET_WORDS for w in words) or ("key" in words and len(words) > 1)


def _setting_paths(override: str) -> List[str]:
    """The setting an override names and, when its value is a list or dict (which may hold further overrides, as
    demo.measure_overrides does), every `name=` or `name:` inside it. A plain value (a prompt) is not searched."""
    key, sep, value = override.partition("=")
    paths = [key.lstrip("+~")]
    if sep and value.lstrip()[:1] in ("[", "{"):
        paths += _NAME_BEFORE_VALUE.findall(value)
    return paths


def refuse_secret_overrides(overrides: Sequence[str]) -> None:
    """ValueError for the first override that sets a credential-named setting; the value is never repeated."""
    for override in overrides:
        for path in _setting_paths(str(override)):
            if any(is_secret_name(part) for part in path.split(".")):
                env = "WANDB_API_KEY" if "wandb" in path.lower() else "the tool's own (WANDB_API_KEY for wandb)"
                raise ValueError(f"{path}: secrets are refused on the command line (an override is written to "
                                 f".hydra/overrides.yaml, results.json and the log); set the environment variable "
                                 f"{env} instead")


def command_line_app(app: str):
    """Decorator above ``@hydra.main``: secrets in ``sys.argv`` refused before Hydra writes ``.hydra/``; Ctrl-C
    anywhere prints ``INTERRUPTED`` and exits 130."""
    log = logging.getLogger(app)

    def decorate(hydra_main):
        @functools.wraps(hydra_main)
        def run(*args, **kwargs):
            try:
                refuse_secret_overrides(sys.argv[1:])
            except ValueError as err:
                log.error("invalid config: %s", err)
                sys.exit(EXIT_BAD_INPUT)
            try:
                return hydra_main(*args, **kwargs)
            except KeyboardInterrupt:
                log.error(INTERRUPTED)
                sys.exit(EXIT_INTERRUPTED)

        return run

    return decorate
