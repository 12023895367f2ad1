"""Reading a policy file: YAML with the line of every value, so errors name file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]


class PolicyError(ValueError):
    """A policy file is invalid; ``str()`` reads ``rules/hosts.yaml:12: apis[3].hosts: message``."""

    def __init__(self, file: Path | str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = f"{file}:{line}" if line else str(file)
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def field_name(path: FieldPath) -> str:
    """``("apis", 3, "hosts")`` → ``apis[3].hosts``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class PolicyDocument:
    """A parsed YAML file plus the line (1-based) where each value starts."""

    file: Path
    data: Any
    lines: dict[FieldPath, int]

    def error(self, path: FieldPath, message: str) -> PolicyError:
        """An error pointing at the value at ``path`` (or its nearest parent that has a line)."""
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return PolicyError(self.file, self.lines.get(probe), field_name(path), message)


def _build(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if not isinstance(key, str):
                raise PolicyError(
                    "", key_node.start_mark.line + 1, field_name(path), "keys must be text"
                )
            if key in out:
                raise PolicyError(
                    "", key_node.start_mark.line + 1, field_name((*path, key)), "duplicate key"
                )
            out[key] = _build(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_policy_file(file: Path) -> PolicyDocument:
    """Parse ``file`` (safe YAML only). Raises :class:`PolicyError` if unreadable or invalid."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(file, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise PolicyError(file, line, "", f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    lines: dict[FieldPath, int] = {}
    if root is None:
        return PolicyDocument(file, {}, lines)
    try:
        data = _build(root, (), lines)
    except PolicyError as exc:
        raise PolicyError(file, exc.line, exc.field, exc.message) from None
    return PolicyDocument(file, data, lines)
