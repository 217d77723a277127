"""Every table of the docs that lists configs matches the configs on disk, so that a table cannot
go stale: a config added without its row, a row left behind by a removed config, or a class or
best-checkpoint metric that changed in the code fails here.

A table lists configs when its first column names them: ``group=name`` (`data=mnist`, the README's
`model=gan`), or bare names under a header that is a group (`| model |`, `| experiment |`). The
groups table (`| group | options |`) lists every group and, where a row names them, its options.
In a table of models, a `class` column gives the class the config builds (what `load_model` and
`aigc.from_pretrained` return), and a `metric` and a `better` column the metric and direction of
its best checkpoint.
"""

import re
from dataclasses import dataclass

import pytest
from conftest import ROOT
from hydra.utils import get_class
from omegaconf import OmegaConf

from aigc.paths import CONFIG_DIR

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
BETTER = {"min": "lower", "max": "higher"}


@dataclass(frozen=True)
class Table:
    page: str
    line: int
    header: list[str]
    rows: list[list[str]]

    def column(self, word: str) -> int | None:
        """The first column whose header holds ``word``."""
        return next((i for i, name in enumerate(self.header) if word in name.lower()), None)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(markdown: str, page: str) -> list[Table]:
    """The Markdown tables of a page, outside code blocks."""
    found, lines, fenced = [], markdown.splitlines(), False
    i = 0
    while i < len(lines):
        fenced ^= lines[i].lstrip().startswith("```")
        is_table = lines[i].startswith("|") and i + 1 < len(lines)
        if not fenced and is_table and re.fullmatch(r"\|( *:?-+:? *\|)+", lines[i + 1].strip()):
            start, rows = i, []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            found.append(Table(page, start + 1, [h.lower() for h in cells(lines[start])], rows))
            continue
        i += 1
    return found


def code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def listed(table: Table, groups: dict[str, set[str]]) -> tuple[str, set[str]] | None:
    """The group whose configs the table's first column lists, and the names it lists; None for
    a table that lists no configs."""
    if table.header[0] in groups:  # names that begin their cell: `gan`, not "a GAN (`gan`)"
        names = {code_names(row[0])[0] for row in table.rows if row[0].startswith("`")}
        return (table.header[0], names) if names else None
    refs = set()
    for row in table.rows:
        for code in code_names(row[0]):
            match = re.match(r"([\w/]+)=(\w+)(\s|$)", code)
            if match and match[1] in groups:
                refs.add((match[1], match[2]))
    if not refs or len({group for group, _ in refs}) > 1:
        return None
    (group,) = {group for group, _ in refs}
    return group, {name for _, name in refs}


def on_disk() -> dict[str, set[str]]:
    """Every config group (a folder of the config tree that holds configs) and its options."""
    return {
        folder.relative_to(CONFIG_DIR).as_posix(): {path.stem for path in folder.glob("*.yaml")}
        for folder in sorted(CONFIG_DIR.rglob("*"))
        if folder.is_dir() and any(folder.glob("*.yaml"))
    }


def model_facts() -> dict[str, dict[str, str]]:
    """What each model config builds: its class, and the metric and direction of its best
    checkpoint."""
    facts = {}
    for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        cls = get_class(OmegaConf.load(path)._target_)
        metric, mode = cls.monitor
        facts[path.stem] = {"class": cls.__name__, "metric": metric, "better": BETTER[mode]}
    return facts


def mismatches(
    table: Table, groups: dict[str, set[str]], models: dict[str, dict[str, str]]
) -> list[str]:
    """How the table differs from the configs on disk (nothing for a table that lists none)."""
    where = f"{table.page}:{table.line}"
    wrong = []
    if table.header[:2] == ["group", "options"]:
        rows = {code_names(row[0])[0]: row[1] for row in table.rows if code_names(row[0])}
        if set(rows) != set(groups):
            wrong.append(f"{where} lists the groups {sorted(rows)}, the configs {sorted(groups)}")
        for group, options in rows.items():
            names = {name for name in code_names(options) if "=" not in name}
            if names and names != groups.get(group):
                wrong.append(f"{where}: {group} lists {sorted(names)}, not {groups.get(group)}")
        return wrong
    found = listed(table, groups)
    if found is None:
        return wrong
    group, names = found
    if names != groups[group]:
        missing, extra = sorted(groups[group] - names), sorted(names - groups[group])
        wrong.append(f"{where} lists the {group} configs without {missing}, with {extra}")
    if group != "model":
        return wrong
    for row in table.rows:
        codes = [code for code in code_names(row[0]) if re.match(r"(model=)?\w+$", code)]
        name = codes[0].removeprefix("model=") if codes else None
        for key in ("class", "metric", "better"):
            column = table.column(key)
            if name not in models or column is None:
                continue
            given = row[column].strip("`")
            if given != models[name][key]:
                wrong.append(f"{where}: {name}'s {key} is {models[name][key]}, not {given}")
    return wrong


def all_tables() -> list[Table]:
    return [
        table
        for page in PAGES
        if page.is_file()
        for table in tables(page.read_text(encoding="utf-8"), page.relative_to(ROOT).as_posix())
    ]


def test_every_table_of_configs_matches_the_configs_on_disk() -> None:
    groups, models = on_disk(), model_facts()
    wrong = [line for table in all_tables() for line in mismatches(table, groups, models)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("group", ["group", "model", "experiment", "data"])
def test_the_docs_list_every_group_models_experiments_and_datasets(group: str) -> None:
    groups = on_disk()
    kinds = set()
    for table in all_tables():
        if table.header[:2] == ["group", "options"]:
            kinds.add("group")
        elif found := listed(table, groups):
            kinds.add(found[0])
    assert group in kinds, f"no table of the docs lists the {group} configs"


def test_a_config_without_its_row_fails() -> None:
    """The check itself: a config added on disk, or a class that changed, is a mismatch."""
    page = """
| group | options |
| --- | --- |
| `data` | `mnist`, `text` |
| `model` | `gan` |

| model | class | best-checkpoint metric | better |
| --- | --- | --- | --- |
| `gan` | `GAN` | `val/fid_randconv` | lower |

| config | files |
| --- | --- |
| `data=mnist` | MNIST |
| `data=text data.path=<path>` | text |
"""
    groups = {"data": {"mnist", "text"}, "model": {"gan"}}
    models = {"gan": {"class": "GAN", "metric": "val/fid_randconv", "better": "lower"}}
    found = tables(page, "page.md")
    assert [mismatches(table, groups, models) for table in found] == [[], [], []]
    added = {"data": {"mnist", "text", "cifar10"}, "model": {"gan"}}
    assert all(mismatches(table, added, models) for table in (found[0], found[2]))
    renamed = {"gan": {**models["gan"], "class": "DCGAN"}}
    assert mismatches(found[1], groups, renamed)
    assert mismatches(found[0], {**groups, "logger": {"csv"}}, models)


def test_tables_in_code_blocks_are_not_read() -> None:
    page = "```\n| model | x |\n| --- | --- |\n| `gan` | 1 |\n```\n"
    assert tables(page, "page.md") == []
