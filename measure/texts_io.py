"""Read generations in the formats users already have, for `experiment=texts`.

``experiment.texts_file`` is one of:

- a JSONL file, one record per line; or a JSON file holding a list of such records;
- a folder written by Hugging Face ``datasets`` (``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``: every
  split's rows are read, in split order).

A record holds either one generation or a list of them (NoveltyBench's shape: one record per prompt), under the
first field present of:

- text: ``text``, ``output``, ``response``, ``generation``, ``completion`` (a string), or ``generations``,
  ``outputs``, ``responses``, ``completions``, ``texts`` (a list of strings);
- label: ``model``, ``label``, ``generator`` (a record without any of them takes the file's name as its label);
- prompt: ``prompt``, ``input``, ``instruction``, ``question``, ``prompt_id``, ``id`` (optional: used by
  ``experiment.group_by=prompt``);
- ``temperature``, ``seed``: recorded in results.json when every record of a label agrees ("where known").

Other fields are ignored. A malformed record stops the run in one line naming the file and the line (or row).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from measure.config import ConfigError

TEXT_FIELDS = ("text", "output", "response", "generation", "completion")
LIST_FIELDS = ("generations", "outputs", "responses", "completions", "texts")
LABEL_FIELDS = ("model", "label", "generator")
PROMPT_FIELDS = ("prompt", "input", "instruction", "question", "prompt_id", "id")
KNOWN_SETTINGS = ("temperature", "seed")
NODE = "experiment.texts_file"


@dataclass
class TextRecords:
    """The texts of a file: per label its texts and, aligned with them, each text's prompt (None: not given)."""

    texts: Dict[str, List[str]] = field(default_factory=dict)
    prompts: Dict[str, List[Optional[str]]] = field(default_factory=dict)
    settings: Dict[str, Dict[str, set]] = field(default_factory=dict)  # label -> temperature/seed -> values seen
    source_format: str = "jsonl"

    def add(self, label: str, prompt: Optional[str], texts: List[str], row: dict) -> None:
        self.texts.setdefault(label, []).extend(texts)
        self.prompts.setdefault(label, []).extend([prompt] * len(texts))
        seen = self.settings.setdefault(label, {k: set() for k in KNOWN_SETTINGS})
        for key in KNOWN_SETTINGS:
            value = row.get(key)
            seen[key].add(value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None)

    def known_settings(self) -> Dict[str, Dict[str, object]]:
        """Per label, temperature and seed where every record of that label gives the same value, else None."""
        out = {}
        for label, seen in self.settings.items():
            out[label] = {k: next(iter(v)) if len(v) == 1 else None for k, v in seen.items()}
        return out


def _lines(path: Path) -> List[str]:
    """The file's lines, each decoded as UTF-8; a line that is not stops the run naming the file and the line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{NODE}: cannot read {str(path)!r}: {err.strerror or err}") from err
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(f"{NODE}: {path} line {number} is not UTF-8 (byte 0x{line[err.start]:02x} "
                              f"at column {err.start + 1}); save the file as UTF-8") from None
    return lines


def _json_rows(path: Path) -> Iterator[Tuple[str, object]]:
    """(where, row) of a JSONL file, or of a JSON file holding one list of records."""
    lines = _lines(path)
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("["):  # one JSON array (a .json export)
        try:
            rows = json.loads("\n".join(lines))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{NODE}: {path} is not JSON ({err.msg} at line {err.lineno})") from None
        for i, row in enumerate(rows if isinstance(rows, list) else [rows]):
            yield f"record {i + 1}", row
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{NODE}: line {number} is not JSON ({err.msg})") from err


def _dataset_rows(path: Path) -> Iterator[Tuple[str, object]]:
    """(where, row) of a `datasets` save_to_disk folder (every split of a DatasetDict)."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as err:
        raise ConfigError(f"{NODE}: {path} is a folder but not a `datasets` save_to_disk folder "
                          f"({str(err).strip().splitlines()[0][:120]})") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in splits:
        for i, row in enumerate(ds):
            yield f"{split + ' ' if split else ''}row {i + 1}", row


def _label(value, where: str, path: Path, name: str) -> str:
    """A row's label: a non-empty string (a number is taken as its text); null, true/false, lists refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise ConfigError(f'{NODE}: {path} {where}: "{name}" is {json.dumps(value)}; it needs a label string such '
                          f'as "base"')
    return str(value)


def _first(row: dict, names) -> Optional[str]:
    return next((n for n in names if n in row), None)


def _row_texts(row: dict, where: str) -> List[str]:
    single = _first(row, TEXT_FIELDS)
    if single is not None and isinstance(row[single], str):
        return [row[single]]
    many = _first(row, LIST_FIELDS)
    if many is not None and isinstance(row[many], list) and all(isinstance(t, str) for t in row[many]):
        return list(row[many])
    raise ConfigError(f"{NODE}: {where} needs a text string ({' | '.join(TEXT_FIELDS)}) or a list of them "
                      f"({' | '.join(LIST_FIELDS)}) beside a label ({' | '.join(LABEL_FIELDS)})")


def read_records(path_text: str) -> TextRecords:
    """Every text of ``path_text`` (JSONL, JSON list or `datasets` folder), by label, with prompts and settings."""
    path = Path(path_text).expanduser()
    records = TextRecords(source_format="datasets" if path.is_dir() else "jsonl")
    rows = _dataset_rows(path) if path.is_dir() else _json_rows(path)
    for where, row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{NODE}: {where} needs a record ({{\"model\": label, \"text\": string}})")
        name = _first(row, LABEL_FIELDS)
        label = _label(row[name], where, path, name) if name else path.stem
        prompt_field = _first(row, PROMPT_FIELDS)
        prompt = None if prompt_field is None or row[prompt_field] is None else str(row[prompt_field])
        records.add(label, prompt, _row_texts(row, where), row)
    small = {label: len(t) for label, t in records.texts.items() if len(t) < 2}
    if not records.texts or small:
        raise ConfigError(f"{NODE}: every label needs >= 2 texts; got {small or 'no texts'}")
    return records
