"""YAML loading that remembers where every value came from.

PyYAML's C loader builds plain dicts and lists; this loader also records, for each mapping and
sequence, the line of each key or item, so a validation error found later (by pydantic or by the
rule compiler) can be reported as ``FILE:LINE: message``. Duplicate keys, which YAML silently
overwrites, are reported instead. ``${VAR}`` in strings reads the environment when asked to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from worker import redact
from worker.errors import Problem

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Document:
    """A loaded YAML file: its data and the line of every key and item in it."""

    def __init__(self, path: str, data: Any, lines: dict[int, tuple[int, dict[Any, int]]]) -> None:
        self.path = path
        self.data = data
        self._lines = lines  # id(container) -> (line of container, {key or index: line})

    def line_of(self, container: Any, key: Any = None) -> int | None:
        """Line of *key* inside *container* (a dict or list from this document), or of it."""
        entry = self._lines.get(id(container))
        if entry is None:
            return None
        line, keys = entry
        return keys.get(key, line) if key is not None else line

    def locate(self, loc: Sequence[Any]) -> int | None:
        """Line of the deepest element of the path *loc* that exists in the document."""
        node: Any = self.data
        line = self.line_of(node) or 1
        for part in loc:
            in_map = isinstance(node, Mapping) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_map or in_list:
                line = self.line_of(node, part) or line
                node = node[part]
            # anything else (a union tag from pydantic, say) is not in the data: skip it
        return line

    def problem(self, loc: Sequence[Any], message: str) -> Problem:
        return Problem(self.path, self.locate(loc), message)


Lines = dict[int, tuple[int, dict[Any, int]]]


def _make_loader(path: str, env: Mapping[str, str] | None,
                 problems: list[Problem]) -> tuple[type, Lines]:
    lines: Lines = {}

    class Loader(_BaseLoader):  # type: ignore[valid-type,misc]
        def construct_located_map(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
            data: dict[Any, Any] = {}
            yield data
            keys: dict[Any, int] = {}
            self.flatten_mapping(node)
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(Problem(path, key_node.start_mark.line + 1,
                                            "a mapping key must be a plain value"))
                    continue
                # Keys are names: kept as written, so an entity `no:` is not YAML 1.1's False.
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in keys:
                    problems.append(Problem(path, line, f"duplicate key {key!r} "
                                            f"(first at line {keys[key]})"))
                    continue
                keys[key] = line
                data[key] = self.construct_object(value_node, deep=True)
            lines[id(data)] = (node.start_mark.line + 1, keys)

        def construct_located_seq(self, node: yaml.SequenceNode) -> Iterator[list[Any]]:
            data: list[Any] = []
            yield data
            data.extend(self.construct_object(child, deep=True) for child in node.value)
            lines[id(data)] = (node.start_mark.line + 1,
                               {i: child.start_mark.line + 1 for i, child in enumerate(node.value)})

        def construct_env_str(self, node: yaml.ScalarNode) -> str:
            value: str = self.construct_scalar(node)
            if env is None or "${" not in value:
                return value

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in env:
                    problems.append(Problem(path, node.start_mark.line + 1,
                                            f"environment variable {name} is not set"))
                    return ""
                redact.add_secrets([env[name]])   # what the environment supplies stays unlogged
                return env[name]

            return _VAR.sub(sub, value)

    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_located_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", Loader.construct_located_seq)
    Loader.add_constructor("tag:yaml.org,2002:str", Loader.construct_env_str)
    return Loader, lines


def load(path: str | Path, *, env: Mapping[str, str] | None = None) -> tuple[Document | None,
                                                                              list[Problem]]:
    """Load one YAML file. With *env*, ``${VAR}`` in strings is replaced from it (missing: an
    error). Returns the document (None when unreadable) and the problems found."""
    name = str(path)
    problems: list[Problem] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, None, f"cannot read: {exc}")]
    loader_cls, lines = _make_loader(name, env, problems)
    loader = loader_cls(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(name, line, f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, None, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    return Document(name, data, lines), problems

