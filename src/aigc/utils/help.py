"""The ``--help`` of every entry point: its config groups and keys, one line each, read from the
comment right above each of them in the YAML files. Hydra prints it through its help template
(configs/hydra/help/aigc.yaml), which calls the ``aigc.help`` resolver registered here."""

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from aigc.paths import CONFIG_DIR

WIDTH = 100
# A YAML key, or a defaults-list entry (`- data: mnist`, `- override hydra/help: aigc`).
_KEY = re.compile(r"^(?P<indent> *)(?P<item>- )?(?:override )?(?P<key>[\w/]+):")
# The end of a comment's first sentence: a full stop before a space and a capital or a quote.
_SENTENCE_END = re.compile(r"(?<=\.) (?=[A-Z`])")


def comments(path: Path) -> dict[str, str]:
    """Each commented key of a YAML file, dotted (``image.batch_size``; a defaults-list entry by
    its group, ``data``), with the comment block right above it, folded into one line."""
    found: dict[str, str] = {}
    block: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("#"):
            block.append(text.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match["indent"])
            parents = [(i, key) for i, key in parents if i < indent]
            if match["item"]:  # a defaults-list entry names a group, not a nested key
                dotted = match["key"]
            else:
                dotted = ".".join([key for _, key in parents] + [match["key"]])
                parents.append((indent, match["key"]))
            if block:
                found[dotted] = " ".join(block)
        block = []  # a blank line or a key ends a comment block
    return found


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def render(cfg: DictConfig) -> str:
    """The help of the entry point whose composed config (with its ``hydra`` node) is ``cfg``:
    the header comment of its config, its groups with their options, and its keys with their
    values. A group in use with a single option (``sampling``, ``paths``) has nothing to choose,
    so its keys are listed instead."""
    name = cfg.hydra.job.config_name
    entry = (CONFIG_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    described = comments(CONFIG_DIR / f"{name}.yaml")
    choices = cfg.hydra.runtime.choices
    # In the order of the entry config's defaults list; groups that only an option brings last.
    position = {g: entry.find(f"- {g}:") for g in choices if not g.startswith("hydra")}
    groups = sorted(position, key=lambda g: (position[g] < 0, position[g]))
    chosen = [g for g in groups if choices[g] is None or len(options(g)) > 1]
    rows = []
    for group in chosen:
        listed = f"({', '.join(options(group))})"
        text = f"{_first_sentence(described.get(group, ''))} {listed}".strip()
        rows.append((f"{group}={_shown(choices[group])}", text))
    for group in [g for g in groups if g not in chosen]:
        keys = comments(CONFIG_DIR / group / f"{choices[group]}.yaml")
        # The entry config's own comment on a group key it sets comes first.
        described = {**{f"{group}.{key}": text for key, text in keys.items()}, **described}
    values = OmegaConf.to_container(cfg, resolve=False)
    del values["hydra"]
    # The entry point's own keys first, then those of its groups.
    leaves = sorted(_leaves(values), key=lambda leaf: leaf[0].split(".")[0] in groups)
    for key, value in leaves:
        if key.split(".")[0] not in chosen:
            rows.append((f"{key}={_shown(value)}", _first_sentence(described.get(key, ""))))
    usage = f"python {name}.py {'[GROUP=OPTION ...] ' if chosen else ''}[KEY=VALUE ...]"
    header = textwrap.fill(described.get("defaults", ""), WIDTH)
    footer = f"Every key as composed: python {name}.py [...] --cfg job. Hydra's flags: --hydra-help"
    return "\n\n".join([usage, header, _table(rows), footer]) + "\n"


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [(prefix.removesuffix("."), node)]


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _table(rows: list[tuple[str, str]]) -> str:
    """Each (left, text) on one line, the texts aligned; long ones wrap under their start."""
    column = min(max(len(left) for left, _ in rows), 28) + 4
    lines = []
    for left, text in rows:
        start = f"  {left}".ljust(column - 2) + "  "
        if len(start) > column:  # a long key and value: the text goes on the next line
            lines.append(start.rstrip())
            start = " " * column
        wrapped = textwrap.fill(text, WIDTH, initial_indent=start, subsequent_indent=" " * column)
        lines.append(wrapped.rstrip())
    return "\n".join(lines)


def _help(*, _root_: DictConfig) -> str:
    # Hydra fills its template with string.Template: a literal $ is written $$.
    return render(_root_).replace("$", "$$")


def register_resolver() -> None:
    """Lets the help template of configs/hydra/help/aigc.yaml call ``${aigc.help:}``."""
    if not OmegaConf.has_resolver("aigc.help"):
        OmegaConf.register_new_resolver("aigc.help", _help)
