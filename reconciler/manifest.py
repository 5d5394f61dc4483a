"""Find, parse and validate stream manifests. Pure: reads files, talks to nobody, logs nothing.

A manifest file holds one or more YAML documents (`---`); each non-empty document declares one
stream with the JetStream API's own field names, plus an optional `reconcile:` block:

    name: events
    subjects: ["events.*"]
    max_age: 7d            # durations: 100ms, 90s, 1h30m, 7d, or 0
    max_bytes: 512MiB      # sizes: bytes, KiB/MiB/GiB/TiB, KB/MB/GB/TB, or unlimited
    reconcile:
      allow_data_loss: false
      drift: enforce       # or report
      ignore_fields: [metadata.owner]

Every problem in every file is reported in one run, each with `file:line:column`, the field
path, what is wrong and what to write instead. A document with any problem yields no spec.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler import fields as kinds
from reconciler.errors import ManifestError
from reconciler.model import LEASE_STREAM, DriftMode, Location, Policy, Problem, StreamSpec
from reconciler.subjects import (
    SubjectIndex,
    subject_is_subset,
    subjects_collide,
    transform_error,
)
from reconciler.units import (
    UnitError,
    format_duration,
    parse_count,
    parse_duration,
    parse_size,
    parse_timestamp,
)

if TYPE_CHECKING:
    from jsonschema import Draft7Validator  # type: ignore[import-untyped]

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "SUPPORTED_KINDS",
    "LoadResult",
    "discover",
    "load_manifests",
    "load_or_raise",
    "subject_is_subset",
    "subjects_collide",
]

#: files larger than this are rejected unread
MAX_FILE_BYTES: Final = 1024 * 1024
#: YAML nodes visited per document, aliases expanded: stops alias bombs ("billion laughs").
#: A file may visit MAX_NODES plus one node per two bytes of text (no plain YAML node takes
#: less), so that many small documents cannot add up to a bomb either.
MAX_NODES: Final = 100_000
#: problems reported per file; the rest are counted in one last problem
MAX_PROBLEMS_PER_FILE: Final = 100
SUPPORTED_KINDS: Final = ("Stream",)
YAML_SUFFIXES: Final = frozenset({".yaml", ".yml"})

MAX_NAME_LEN: Final = 255  # JSMaxNameLen
MAX_METADATA_BYTES: Final = 128 * 1024  # JSMaxMetadataLen
MAX_DESCRIPTION_LEN: Final = 4 * 1024  # JSMaxDescriptionLen, in bytes
MAX_REPLICAS: Final = 5  # StreamMaxReplicas
MIN_MAX_AGE: Final = 100_000_000  # 100ms
MIN_DUPLICATE_WINDOW: Final = 100_000_000  # 100ms
MIN_DELETE_MARKER_TTL: Final = 1_000_000_000  # 1s
DEFAULT_DUPLICATE_WINDOW: Final = 120_000_000_000  # 2m

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class LoadResult:
    """Everything `load_manifests` found. Pure data: the caller decides what to do with it."""

    specs: tuple[StreamSpec, ...]
    """Streams from valid documents, in file order. A document with any problem has no spec
    here, but the valid documents of a failed file do: drop them by `spec.location.file in
    failed_files` to keep the last good state of a file instead."""
    problems: tuple[Problem, ...]
    """Every problem found, sorted by location."""
    files: tuple[str, ...]
    """Every manifest file read (as discovered: relative when the path given was)."""
    failed_files: frozenset[str]
    """Files (and given paths) with at least one problem."""

    @property
    def ok(self) -> bool:
        return not self.problems


# --- discovery -------------------------------------------------------------------------------


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The manifest files under `paths`, sorted; a file reached twice (a symlink, a path given
    twice) is listed once, under the first name it was found by.

    A directory is searched recursively for `*.yaml`/`*.yml`, following symlinks and skipping
    entries whose name starts with `.` (a Kubernetes ConfigMap mount shows each key as a
    symlink through `..data`, and keeps `..data` and `..<timestamp>` beside them). A file named
    explicitly is read whatever its suffix. Paths that do not exist are left out here;
    `load_manifests` reports them.
    """
    return _discover(paths)[0]


def _discover(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    found: list[Path] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                _walk(path, frozenset({path.resolve()}), found, problems)
            elif path.exists():
                found.append(path)
            elif path.is_symlink():
                problems.append(_file_problem(path, "is a broken symbolic link"))
            else:
                problems.append(_file_problem(path, "no such file or directory"))
        except OSError as exc:
            problems.append(_file_problem(path, f"cannot read: {exc.strerror or exc}"))
    unique: dict[Path, Path] = {}  # real path: the first name it was found under
    for path in found:
        unique.setdefault(path.resolve(), path)
    return sorted(unique.values(), key=lambda p: p.parts), problems


def _walk(
    directory: Path, stack: frozenset[Path], out: list[Path], problems: list[Problem]
) -> None:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        problems.append(_file_problem(directory, f"cannot read: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = directory / entry.name
        try:
            if entry.is_dir():
                real = path.resolve()
                if real not in stack:  # a symlink back up the tree: been there
                    _walk(path, stack | {real}, out, problems)
            elif path.suffix.lower() in YAML_SUFFIXES:
                if entry.is_file():
                    out.append(path)
                elif entry.is_symlink() and not path.exists():
                    problems.append(_file_problem(path, "is a broken symbolic link"))
                else:
                    problems.append(_not_regular(path, path.stat().st_mode))
        except OSError as exc:
            problems.append(_file_problem(path, f"cannot read: {exc.strerror or exc}"))


_SPECIAL_FILES: Final = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(path: Path, mode: int) -> Problem:
    what = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
    return _file_problem(
        path,
        f"is {what}: manifests are read from regular files only",
        "give the path of a manifest file, or of a directory of them",
    )


def _file_problem(path: Path, message: str, hint: str | None = None) -> Problem:
    return Problem(Location(str(path)), "", message, hint)


# --- loading ---------------------------------------------------------------------------------


def load_manifests(paths: Sequence[str | os.PathLike[str]]) -> LoadResult:
    """Discover, parse and validate every manifest under `paths`. Never raises for a bad
    manifest: every problem is in the result."""
    global _LAST
    files, discovered = _discover(paths)
    problems = list(discovered)
    parsed = [_load_file(path) for path in files]
    last = _LAST
    if (
        last is not None
        and last[0] == (files, discovered)
        and len(last[1]) == len(parsed)
        and all(a is b for a, b in zip(last[1], parsed, strict=True))
    ):
        return last[2]  # the same files, each parsed to the very same result as last time
    docs: list[_Document] = []
    for file_docs, file_problems in parsed:
        # the cross-file checks add to each document's problems: give them lists of their own
        docs.extend(replace(d, problems=list(d.problems)) for d in file_docs)
        problems.extend(file_problems)
    _check_across(docs)
    specs: list[StreamSpec] = []
    for doc in docs:
        problems.extend(doc.problems)
        if not doc.problems and not doc.failed and doc.spec is not None:
            specs.append(doc.spec)
    problems.sort(key=lambda p: p.location)  # stable: same place, order of the checks
    result = LoadResult(
        specs=tuple(specs),
        problems=tuple(problems),
        files=tuple(str(f) for f in files),
        failed_files=frozenset(p.location.file for p in problems),
    )
    _LAST = ((files, discovered), parsed, result)
    return result


#: the last load: (files and discovery problems, each file's parse, the result). Watch mode
#: loads every manifest on every pass; when no file changed, the checks across documents
#: would only find again what they found last time.
_LAST: tuple[tuple[list[Path], list[Problem]], list[_Parsed], LoadResult] | None = None


def load_or_raise(paths: Sequence[str | os.PathLike[str]]) -> tuple[StreamSpec, ...]:
    """The specs under `paths`; `ManifestError` with every problem if there is any."""
    result = load_manifests(paths)
    if result.problems:
        raise ManifestError(result.problems)
    return result.specs


@dataclass
class _Document:
    """One YAML document while it is checked; `spec` is None when it declares no stream."""

    file: str
    location: Location
    problems: list[Problem] = field(default_factory=list)
    spec: StreamSpec | None = None
    subjects_ok: bool = False
    failed: bool = False
    """Has problems, some perhaps not shown (past MAX_PROBLEMS_PER_FILE)."""


class _TooManyNodes(Exception):
    """More YAML nodes than a document (or the whole file) may expand to."""


def _load_file(path: Path) -> _Parsed:
    """The parse of one file: the same object as last time when its bytes are the same."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat: what was opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return (), (_not_regular(path, info.st_mode),)
            if info.st_size > MAX_FILE_BYTES:
                return (), (_size_problem(path, info.st_size),)
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return (), (_file_problem(path, f"cannot read: {exc.strerror or exc}"),)
    if len(data) > MAX_FILE_BYTES:  # grew since stat
        return (), (_size_problem(path, len(data)),)
    return _parse(name, data)


_Parsed = tuple[tuple["_Document", ...], tuple[Problem, ...]]
#: file name -> (its bytes, what they parse to): the last version of each file only
_PARSED: dict[str, tuple[bytes, _Parsed]] = {}
_PARSED_FILES = 4096


def _parse(name: str, data: bytes) -> _Parsed:
    """Parse and check one file's bytes. Watch mode reloads every manifest on every pass and
    most files have not changed since the last one, so the last parse of each file is kept."""
    cached = _PARSED.get(name)
    if cached is not None and cached[0] == data:
        return cached[1]
    docs, problems = _parse_text(name, data)
    parsed = (tuple(docs), tuple(problems))
    if len(_PARSED) >= _PARSED_FILES:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[name] = (data, parsed)
    return parsed


def _parse_text(name: str, data: bytes) -> tuple[list[_Document], list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        return [], [
            Problem(
                Location(name, line + 1, column + 1),
                "",
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                "save it as UTF-8",
            )
        ]

    reader = _Reader(name, node_budget=MAX_NODES + len(text) // 2)
    docs: list[_Document] = []
    file_problems: list[Problem] = []
    try:
        for node in _compose(text):
            doc = reader.document(node)
            if doc is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        file_problems.append(_yaml_problem(name, exc))
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        file_problems.append(_reader_problem(name, text, exc))
    except RecursionError:
        file_problems.append(
            Problem(Location(name), "", "the YAML is nested too deeply", "flatten the structure")
        )
    except _TooManyNodes:
        file_problems.append(
            Problem(
                Location(name),
                "",
                f"the file expands to more than {reader.node_budget} YAML nodes "
                "(aliases of aliases?)",
                "write the values out instead of nesting aliases",
            )
        )
        if reader.current is not None and reader.current not in docs:
            reader.current.failed = True
            docs.append(reader.current)
    if reader.dropped:
        file_problems.append(
            Problem(
                Location(name),
                "",
                f"{reader.dropped} more problems in this file are not shown",
                "fix the ones shown first",
            )
        )
    return docs, file_problems


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> Iterable[yaml.Node]:
    """The documents' node trees: through libyaml when PyYAML has it (ten times faster);
    on a YAML error, through the pure-Python parser, whose messages are the same on every
    machine."""
    if _FAST_LOADER is not None:
        try:
            return list(yaml.compose_all(text, Loader=_FAST_LOADER))
        except yaml.YAMLError:
            pass
    return yaml.compose_all(text, Loader=yaml.SafeLoader)


def _size_problem(path: Path, size: int) -> Problem:
    return _file_problem(
        path,
        f"the file is {size} bytes, more than the limit of {MAX_FILE_BYTES} bytes (1MiB)",
        "split it into several files",
    )


def _yaml_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        where = ""
        if exc.context_mark is not None:
            where = f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        message += f" ({exc.context}{where})"
    hint = None
    if exc.problem and "'\\t'" in exc.problem:
        hint = "indent with spaces: YAML does not allow tabs there"
    return Problem(location, "", message, hint)


def _reader_problem(file: str, text: str, exc: yaml.YAMLError) -> Problem:
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    location = Location(file)
    if isinstance(position, int):
        line = text.count("\n", 0, position)
        column = position - (text.rfind("\n", 0, position) + 1)
        location = Location(file, line + 1, column + 1)
    what = f" #x{character:04x}" if isinstance(character, int) else ""
    return Problem(
        location,
        "",
        f"invalid YAML: the character{what} is not allowed",
        "remove it, or write it as an escape inside double quotes",
    )


# --- the field tree, from the JSON schema -----------------------------------------------------


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("schema/stream_configuration.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def _manifest_schema() -> dict[str, Any]:
    # A manifest names only the fields it sets: the schema's top-level `required` list is the
    # server's view of a complete config, not ours. `name` is checked before.
    return {k: v for k, v in _schema().items() if k != "required"}


@functools.cache
def _validator() -> Draft7Validator:
    """The schema's own validator, which words its problems. (Imported here: it takes
    longer to import than most documents take to check, and valid documents never need it.)"""
    from jsonschema import Draft7Validator

    return Draft7Validator(_manifest_schema())


#: schema keywords that assert nothing (Draft7Validator without a format checker)
_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "format", "examples"}
)
_TYPES: Final = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class _Unsupported(Exception):
    """A schema keyword `_compile` does not know: every document goes to the validator."""


def _compile(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A fast test that a value fits `schema` (JSON Schema draft 7, the keywords our schema
    uses). It may say no where the validator finds nothing, never the other way round: a
    yes skips the validator, a no runs it, and the problems are the validator's."""
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "required", "properties", "additionalProperties", "items", "enum",
        "pattern", "minLength", "maxLength", "minimum", "maximum",
    }  # fmt: skip
    if unknown:
        raise _Unsupported(", ".join(sorted(unknown)))
    checks: list[Callable[[Any], bool]] = []
    kind = schema.get("type")
    if kind is not None:
        allowed = tuple(t for k in ([kind] if isinstance(kind, str) else kind) for t in _TYPES[k])
        # exact types: a bool is no integer here, an int no float; when unsure, say no
        checks.append(lambda v: type(v) in allowed)
    if "enum" in schema:
        enum = [(type(e), e) for e in schema["enum"]]
        checks.append(lambda v: any(type(v) is t and v == e for t, e in enum))
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda v: type(v) is not str or search(v) is not None)
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        low, high = low or 0, float("inf") if high is None else high
        checks.append(lambda v: type(v) is not str or low <= len(v) <= high)
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    if minimum is not None or maximum is not None:
        lo = float("-inf") if minimum is None else minimum
        hi = float("inf") if maximum is None else maximum
        checks.append(lambda v: type(v) not in (int, float) or lo <= v <= hi)
    if "required" in schema:
        required = tuple(schema["required"])
        checks.append(lambda v: type(v) is not dict or all(r in v for r in required))
    if "properties" in schema or "additionalProperties" in schema:
        props = {name: _compile(sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        other: Callable[[Any], bool] | None = None
        if extra is False:
            other = lambda _: False  # noqa: E731
        elif isinstance(extra, Mapping):
            other = _compile(extra)

        def fields(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for name, item in v.items():
                check = props.get(name, other)
                if check is not None and not check(item):
                    return False
            return True

        checks.append(fields)
    if "items" in schema:
        if not isinstance(schema["items"], Mapping):
            raise _Unsupported("items as a list")
        each = _compile(schema["items"])
        checks.append(lambda v: type(v) is not list or all(each(i) for i in v))
    if len(checks) == 1:
        return checks[0]

    def every(v: Any) -> bool:
        for check in checks:  # noqa: SIM110 (a loop: all() of a generator costs more here)
            if not check(v):
                return False
        return True

    return every


@functools.cache
def _fits() -> Callable[[Any], bool]:
    """`_compile` of the manifest schema, or a test that always says no."""
    try:
        return _compile(_manifest_schema())
    except _Unsupported:
        return lambda _: False


@dataclass(frozen=True)
class _Field:
    """What a manifest may write at one place of the configuration."""

    kind: str
    """text, integer, boolean, duration, size, count, timestamp, object, map, list"""
    fields: Mapping[str, _Field] = field(default_factory=dict)
    item: _Field | None = None
    enum: tuple[str, ...] = ()


def _build(schema: Mapping[str, Any], pattern: str) -> _Field:
    if pattern in kinds.DURATIONS:
        return _Field("duration")
    if pattern in kinds.SIZES:
        return _Field("size")
    if pattern in kinds.COUNTS:
        return _Field("count")
    if pattern in kinds.TIMESTAMPS:
        return _Field("timestamp")
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        if "properties" in schema:
            return _Field(
                "object",
                fields={
                    name: _build(sub, f"{pattern}.{name}" if pattern else name)
                    for name, sub in schema["properties"].items()
                },
            )
        return _Field("map", item=_build(schema.get("additionalProperties", {}), f"{pattern}.*"))
    if kind == "array":
        return _Field("list", item=_build(schema.get("items", {}), f"{pattern}.*"))
    if kind == "integer":
        return _Field("integer")
    if kind == "boolean":
        return _Field("boolean")
    return _Field("text", enum=tuple(schema.get("enum", ())))


@functools.cache
def _stream_fields() -> _Field:
    return _build(_schema(), "")


_RECONCILE_FIELDS: Final = ("allow_data_loss", "drift", "ignore_fields")


def _is_config_path(path: str) -> bool:
    """Whether `path` (dotted; list elements as `*` or an index) names a configuration field."""
    node: _Field | None = _stream_fields()
    for part in path.split("."):
        if node is None:
            return False
        if node.kind == "object":
            node = node.fields.get(part)
            if node is None:
                return False
        elif node.kind == "list":
            if part != "*" and not part.isdigit():
                return False
            node = node.item
        elif node.kind == "map":
            if not part:
                return False
            node = None  # metadata.<any key>, and nothing below it
        else:
            return False
    return True


def _config_paths() -> list[str]:
    out: list[str] = []

    def visit(node: _Field, prefix: str) -> None:
        for name, sub in node.fields.items():
            path = f"{prefix}.{name}" if prefix else name
            out.append(path)
            if sub.kind == "object":
                visit(sub, path)
            elif sub.kind == "list" and sub.item is not None and sub.item.kind == "object":
                visit(sub.item, f"{path}.*")

    visit(_stream_fields(), "")
    return out


# --- reading one document ----------------------------------------------------------------------


class _Invalid:
    """A value that had a problem: left out of the config."""


_INVALID: Final = _Invalid()


def _suggest(word: str, options: Iterable[str]) -> str | None:
    options = list(options)
    squashed = {re.sub(r"[_\-\s]", "", o.lower()): o for o in options}
    exact = squashed.get(re.sub(r"[_\-\s]", "", word.lower()))
    if exact is not None:
        return exact
    import difflib  # only on a problem: not worth importing for valid manifests

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _node_kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    if node.tag == _BOOL:
        return "a boolean"
    if node.tag in (_INT, _FLOAT):
        return "a number"
    return "text"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class _Reader:
    """Turns the YAML nodes of one file into checked documents, keeping every position."""

    def __init__(self, file: str, node_budget: int) -> None:
        self.file = file
        self.node_budget = node_budget
        self.nodes = 0
        self.document_nodes = 0
        self.reported = 0
        self.dropped = 0
        self.current: _Document | None = None
        # per document
        self.locations: dict[str, Location] = {}
        self.key_nodes: dict[str, Node] = {}
        """the key of each field, by path: where a field found missing inside it is reported"""
        self.raw: dict[str, str] = {}
        self.failed_paths: set[str] = set()

    # -- bookkeeping

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def where(self, path: str) -> Location:
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path.rpartition(".")[0]
        assert self.current is not None
        return self.current.location

    def add(
        self, at: Node | Location | str, path: str, message: str, hint: str | None = None
    ) -> None:
        """Record a problem at a node, a location, or the location of a field path."""
        assert self.current is not None
        if isinstance(at, Node):
            location = self.loc(at)
        elif isinstance(at, Location):
            location = at
        else:
            location = self.where(at)
        self.failed_paths.add(path)
        self.current.failed = True
        if self.reported >= MAX_PROBLEMS_PER_FILE:
            self.dropped += 1
            return
        self.reported += 1
        self.current.problems.append(Problem(location, path, message, hint))

    def fail(self, path: str, message: str, hint: str | None = None) -> None:
        """Record a problem at the value of the field `path`."""
        self.add(path, path, message, hint)

    def count(self) -> None:
        self.nodes += 1
        self.document_nodes += 1
        if self.document_nodes > MAX_NODES or self.nodes > self.node_budget:
            raise _TooManyNodes

    # -- structure

    def pairs(
        self, node: MappingNode, path: str, merging: frozenset[int] = frozenset()
    ) -> list[tuple[str, Node, Node]]:
        """The (name, key node, value node) of a mapping, with `<<` merges applied and
        duplicate keys reported."""
        explicit: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        seen: dict[str, Node] = {}  # name: its key
        for key, value in node.value:
            self.count()
            if key.tag == _MERGE:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        self.add(
                            value,
                            path or "<<",
                            f"'<<' merges mappings only, got {_node_kind(source)}",
                            "write <<: *anchor, where the anchor is on a mapping",
                        )
                    elif id(source) in merging:
                        self.add(
                            value,
                            path or "<<",
                            "'<<' merges a mapping into itself",
                            "merge another mapping, or remove the '<<' line",
                        )
                    else:
                        merged.extend(self.pairs(source, path, merging | {id(node)}))
                continue
            if not isinstance(key, ScalarNode):
                self.add(key, path, "a field name must be text", "write name: value")
                continue
            name = key.value
            if bad := _surrogate_problem(name):
                self.add(key, _join(path, _shown(name)), *bad)
                continue
            if name in seen:
                first = seen[name]
                self.add(
                    key,
                    _join(path, name),
                    f"'{name}' is given twice (first at line {first.start_mark.line + 1})",
                    "remove one of them",
                )
                continue
            seen[name] = key
            explicit.append((name, key, value))
        out = list(explicit)
        for name, key, value in merged:
            if name not in seen:  # explicit keys win; earlier merges win over later ones
                seen[name] = key
                out.append((name, key, value))
        return out

    # -- one document

    def document(self, node: Node) -> _Document | None:
        if isinstance(node, ScalarNode) and node.tag == _NULL and node.value in ("", "~", "null"):
            return None  # an empty document (only comments, or a stray ---)
        self.current = doc = _Document(self.file, self.loc(node))
        self.locations, self.key_nodes, self.raw = {}, {}, {}
        self.failed_paths = set()
        self.document_nodes = 0
        try:
            self.check_document(doc, node)
        except _TooManyNodes:
            if self.nodes > self.node_budget:
                raise  # the whole file is too much: stop reading it
            doc.spec = None
            self.add(
                doc.location,
                "",
                f"the document expands to more than {MAX_NODES} YAML nodes (aliases of aliases?)",
                "write the values out instead of nesting aliases",
            )
        return doc

    def check_document(self, doc: _Document, node: Node) -> None:
        if not isinstance(node, MappingNode):
            self.add(
                node,
                "",
                f"a stream manifest is a mapping of fields, got {_node_kind(node)}",
                "start the document with 'name: <stream name>'",
            )
            return
        pairs = self.pairs(node, "")
        for name, _, value in pairs:
            if name == "kind" and not self.kind(value):
                return  # another kind of document: its fields are not ours to check
        config_pairs: list[tuple[str, Node, Node]] = []
        policy = Policy()
        for name, key, value in pairs:
            if name == "kind":
                continue
            if name == "reconcile":
                self.key_nodes["reconcile"] = key
                policy = self.policy(value)
            else:
                config_pairs.append((name, key, value))
        top = _stream_fields()
        config = self.object_fields(config_pairs, top, "")
        if "name" not in config and "name" not in self.failed_paths:
            self.add(doc.location, "name", "the stream has no name", "add name: <stream name>")
        _check_config(self, config)
        self.schema(config)
        stream_name = config.get("name")
        if isinstance(stream_name, str):
            doc.spec = StreamSpec(
                name=stream_name,
                config=config,
                policy=policy,
                location=doc.location,
                field_locations=dict(self.locations),
            )
            # whether the subjects it takes are known, for the overlap check across streams
            doc.subjects_ok = not any(
                self.failed_under(p) for p in ("name", "subjects", "mirror", "sources")
            )

    def kind(self, node: Node) -> bool:
        if isinstance(node, ScalarNode) and node.tag != _NULL and node.value in SUPPORTED_KINDS:
            return True
        shown = f"'{node.value}'" if isinstance(node, ScalarNode) else _node_kind(node)
        self.add(
            node,
            "kind",
            f"unsupported kind {shown}",
            f"the only supported kind is {_and(SUPPORTED_KINDS)}, the default without kind",
        )
        return False

    def policy(self, node: Node) -> Policy:
        if not isinstance(node, MappingNode):
            self.add(
                node,
                "reconcile",
                f"expected a mapping, got {_node_kind(node)}",
                "write allow_data_loss, drift or ignore_fields indented below reconcile:",
            )
            return Policy()
        allow = False
        drift = DriftMode.ENFORCE
        ignore: list[str] = []
        for name, key, value in self.pairs(node, "reconcile"):
            path = f"reconcile.{name}"
            self.key_nodes[path] = key
            if name == "allow_data_loss":
                got = self.value(value, _Field("boolean"), path)
                if isinstance(got, bool):
                    allow = got
            elif name == "drift":
                modes = tuple(m.value for m in DriftMode)
                got = self.value(value, _Field("text", enum=modes), path)
                if isinstance(got, str):
                    drift = DriftMode(got)
            elif name == "ignore_fields":
                got = self.value(value, _Field("list", item=_Field("text")), path)
                if isinstance(got, list):
                    for index, item in enumerate(got):
                        if self.ignorable(item, f"{path}.{index}"):
                            ignore.append(item)
            else:
                self.unknown(key, path, _RECONCILE_FIELDS, "reconcile")
        return Policy(allow_data_loss=allow, drift=drift, ignore_fields=tuple(ignore))

    def ignorable(self, path: str, at: str) -> bool:
        if path == "name":
            self.add(at, at, "the name cannot be ignored: it identifies the stream", "remove it")
            return False
        if _is_config_path(path):
            return True
        guess = _suggest(path, _config_paths())
        self.add(
            at,
            at,
            f"'{path}' is not a stream configuration field",
            f"did you mean '{guess}'?"
            if guess
            else "write a field path such as 'max_age' or 'metadata.owner'",
        )
        return False

    def unknown(self, key: Node, path: str, known: Iterable[str], parent: str) -> None:
        name = path.rpartition(".")[2]
        known = list(known)
        guess = _suggest(name, known)
        if guess:
            hint = f"did you mean '{guess}'?"
        elif parent and len(known) <= 10:
            hint = f"{parent} has {_and(known)}"
        else:
            hint = "stream fields are the JetStream API's names, such as max_msgs or max_age"
        self.add(key, path, f"unknown field '{name}'", hint)

    def object_fields(
        self, pairs: list[tuple[str, Node, Node]], spec: _Field, path: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, value in pairs:
            sub = _join(path, name)
            child = spec.fields.get(name)
            if child is None:
                self.unknown(key, sub, spec.fields, path)
                continue
            self.key_nodes[sub] = key
            got = self.value(value, child, sub)
            if got is not _INVALID:
                out[name] = got
        return out

    def value(self, node: Node, spec: _Field, path: str) -> Any:
        """The wire value of `node` for a field of kind `spec`, or _INVALID after a problem."""
        self.count()
        self.locations[path] = self.loc(node)
        if isinstance(node, ScalarNode):
            self.raw[path] = node.value
            if node.tag == _NULL:
                self.add(node, path, "no value given", "write a value, or remove the field")
                return _INVALID
            if bad := _surrogate_problem(node.value):
                self.add(node, path, *bad)
                return _INVALID
        kind = spec.kind
        if kind == "object":
            if not isinstance(node, MappingNode):
                return self.wrong_type(
                    node, path, "a mapping", "write its fields indented below it"
                )
            got = self.object_fields(self.pairs(node, path), spec, path)
            return _INVALID if self.failed_under(path) else got
        if kind == "map":
            if not isinstance(node, MappingNode):
                return self.wrong_type(node, path, "a mapping", "write key: value lines below it")
            assert spec.item is not None
            out: dict[str, Any] = {}
            for name, key, value in self.pairs(node, path):
                sub = f"{path}.{name}"
                self.key_nodes[sub] = key
                got = self.value(value, spec.item, sub)
                if got is not _INVALID:
                    out[name] = got
            return _INVALID if self.failed_under(path) else out
        if kind == "list":
            assert spec.item is not None
            if not isinstance(node, SequenceNode):
                if isinstance(node, ScalarNode) and spec.item.kind == "text":
                    return self.wrong_type(node, path, "a list", f"write ['{node.value}']")
                return self.wrong_type(node, path, "a list", "write one '- ' item per line")
            items = [
                self.value(item, spec.item, f"{path}.{i}") for i, item in enumerate(node.value)
            ]
            return _INVALID if any(i is _INVALID for i in items) else items
        if not isinstance(node, ScalarNode):
            return self.wrong_type(node, path, _EXPECTED[kind], _TYPE_HINTS[kind])
        return self.scalar(node, spec, path)

    def failed_under(self, path: str) -> bool:
        prefix = path + "."
        return any(p == path or p.startswith(prefix) for p in self.failed_paths)

    def wrong_type(self, node: Node, path: str, expected: str, hint: str | None) -> _Invalid:
        self.add(node, path, f"expected {expected}, got {_node_kind(node)}", hint)
        return _INVALID

    def scalar(self, node: ScalarNode, spec: _Field, path: str) -> Any:
        text: str = node.value
        kind = spec.kind
        if kind == "text":
            if spec.enum and text not in spec.enum:
                shown = [v for v in spec.enum if v]
                guess = _suggest(text, shown)
                allowed = ", ".join(shown)
                hint = (
                    f"did you mean '{guess}'? ({allowed})" if guess else f"write one of: {allowed}"
                )
                self.add(node, path, f"unknown value '{text}'", hint)
                return _INVALID
            return text
        if kind == "boolean":
            if node.tag == _BOOL and text.lower() in ("true", "false"):
                return text.lower() == "true"
            if node.tag == _BOOL:
                self.add(node, path, f"'{text}' is not true or false", "write true or false")
            elif text.lower() in ("true", "false"):
                self.add(
                    node,
                    path,
                    f"'{text}' is quoted text, not a boolean",
                    f"write {text.lower()} without quotes",
                )
            else:
                self.add(node, path, f"'{text}' is not true or false", "write true or false")
            return _INVALID
        if kind == "integer":
            if node.tag == _INT:
                return _construct_int(node)
            if node.tag == _FLOAT:
                self.add(node, path, f"{text} is not a whole number", "write a whole number")
            elif re.fullmatch(r"-?\d+", text.strip()):
                self.add(
                    node,
                    path,
                    f"'{text}' is text, not a number",
                    f"write {text.strip()} without quotes",
                )
            else:
                self.add(node, path, f"'{text}' is not a number", "write a whole number")
            return _INVALID
        if kind == "timestamp":
            if not _is_rfc3339(text):
                self.add(
                    node,
                    path,
                    f"'{text}' is not an RFC 3339 time",
                    "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'",
                )
                return _INVALID
            return text
        # durations, sizes, counts
        # sizes and counts take YAML integers (1_000 included); everything else as written
        arg: object = _construct_int(node) if node.tag == _INT and kind != "duration" else text
        try:
            if kind == "duration":
                return parse_duration(arg)
            if kind == "size":
                return parse_size(arg)
            return parse_count(arg)
        except UnitError as exc:
            self.add(node, path, exc.message, exc.hint)
            return _INVALID

    # -- the JSON schema, for what the checks above do not cover (ranges, lengths, required)

    def schema(self, config: Mapping[str, Any]) -> None:
        if _fits()(config):
            return
        for error in sorted(
            _validator().iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
        ):
            path = ".".join(str(p) for p in error.absolute_path)
            if self.failed_under(path) or any(
                path.startswith(p + ".") for p in self.failed_paths if p
            ):
                continue
            shown = self.raw.get(path, json.dumps(error.instance))
            validator = error.validator
            limit = error.validator_value
            if validator == "required":
                missing = [r for r in limit if r not in error.instance]
                key = self.key_nodes.get(path)
                where = self.where(path) if key is None else self.loc(key)
                for name in missing:
                    self.add(where, path, f"'{name}' is missing", f"add {name}: ...")
                continue
            if validator == "maximum":
                hint = _RANGE_HINTS.get(path, f"write at most {limit}")
                self.fail(path, f"{shown} is above the maximum of {limit}", hint)
            elif validator == "minimum":
                self.fail(
                    path,
                    f"{shown} is below the minimum of {limit}",
                    f"write at least {limit}",
                )
            elif validator == "maxLength":
                self.fail(
                    path,
                    f"the text is {len(error.instance)} characters long",
                    f"shorten it to at most {limit} characters",
                )
            elif validator == "minLength":
                self.fail(path, "the text is empty", "write a value")
            elif validator == "enum":
                self.fail(path, f"unknown value {shown}", f"write one of: {', '.join(limit)}")
            elif validator == "pattern":
                self.fail(path, f"'{error.instance}' is not valid here")
            else:
                self.fail(path, error.message)


_EXPECTED: Final = {
    "text": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "duration": "a duration",
    "size": "a size",
    "count": "a count",
    "timestamp": "an RFC 3339 time",
}
_TYPE_HINTS: Final = {
    "text": "write a single value",
    "integer": "write a whole number",
    "boolean": "write true or false",
    "duration": "write a duration such as '30s', or 0",
    "size": "write a number of bytes, a size such as '512MiB', or 'unlimited'",
    "count": "write a whole number, or 'unlimited'",
    "timestamp": "write a date and time with a time zone, e.g. '2024-01-31T12:00:00Z'",
}
_RANGE_HINTS: Final = {
    "max_msg_size": "max_msg_size is a 32-bit number: write at most 2147483647 bytes, "
    "or 'unlimited'",
}

_INT_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _construct_int(node: ScalarNode) -> int:
    """A YAML 1.1 integer as PyYAML reads it (1_000, 0x10), from the node itself."""
    value = _INT_CONSTRUCTOR.construct_yaml_int(node)
    assert isinstance(value, int)
    return value


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SURROGATE_PAIR: Final = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _shown(text: str) -> str:
    """Text as it can be printed: a lone surrogate as its `\\uXXXX` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _surrogate_problem(text: str) -> tuple[str, str] | None:
    """A lone UTF-16 surrogate (`"\\uD800"` in a double-quoted YAML string) is not a
    character: it cannot be sent as UTF-8, and the server would store U+FFFD instead."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    message = (
        f"'{_shown(text)}' contains \\u{ord(found.group()):04x}, half of a UTF-16 surrogate "
        "pair, which is not a character"
    )
    pair = _SURROGATE_PAIR.search(text)
    if pair is not None:
        high, low = (ord(c) for c in pair.group())
        code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        return message, (
            f"write the character itself, or as one escape: \\U{code:08X} "
            f"instead of \\u{high:04x}\\u{low:04x}"
        )
    return message, "remove the escape, or write the character it stands for"


def _is_rfc3339(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


# --- names and subjects ------------------------------------------------------------------------

_NAME_FORBIDDEN: Final = {
    ".": "'.'", "*": "'*'", ">": "'>'", "/": "'/'", "\\": "'\\'", "\x00": "a NUL character",
}  # fmt: skip
_WHITESPACE: Final = {
    " ": "a space",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
    "\f": "a form feed",
}


def _name_problem(name: str) -> tuple[str, str] | None:
    """What is wrong with a stream or consumer name, and what to write instead."""
    if not name:
        return "the name is empty", "write a name such as 'events'"
    bad: list[str] = []
    for ch in name:
        what = _NAME_FORBIDDEN.get(ch) or _WHITESPACE.get(ch)
        if what and what not in bad:
            bad.append(what)
    if bad:
        fixed = "".join("_" if ch in _NAME_FORBIDDEN or ch in _WHITESPACE else ch for ch in name)
        return (
            f"'{name}' contains {_and(bad)}, which a name cannot have",
            f"write '{fixed[:MAX_NAME_LEN]}'",
        )
    if len(name) > MAX_NAME_LEN:
        return (
            f"the name is {len(name)} characters long, more than {MAX_NAME_LEN}",
            f"shorten it to at most {MAX_NAME_LEN} characters",
        )
    size = len(name.encode())
    if size > MAX_NAME_LEN:  # the server counts bytes
        return (
            f"the name takes {size} bytes in UTF-8, more than {MAX_NAME_LEN}",
            f"shorten it to at most {MAX_NAME_LEN} bytes (a non-ASCII character takes 2 to 4)",
        )
    return None


def _subject_problem(subject: str) -> tuple[str, str] | None:
    """What is wrong with a subject (or filter), and what to write instead."""
    if not subject:
        return "the subject is empty", "write a subject such as 'events.>'"
    if any(ch in _WHITESPACE for ch in subject):
        return f"'{subject}' contains whitespace", f"write '{''.join(subject.split())}'"
    tokens = subject.split(".")
    if any(not t for t in tokens):
        fixed = ".".join(t for t in tokens if t)
        return f"'{subject}' has an empty token", f"write '{fixed}'" if fixed else "write a subject"
    for index, token in enumerate(tokens[:-1]):
        if token == ">":
            return (
                f"'{subject}' has '>' before the last token",
                f"'>' matches all remaining tokens, so it comes last: write "
                f"'{'.'.join(tokens[: index + 1])}'",
            )
    return None


def _is_literal(subject: str) -> bool:
    return all(t not in ("*", ">") for t in subject.split("."))


# --- checks on one stream ---------------------------------------------------------------------


def _check_config(r: _Reader, config: Mapping[str, Any]) -> None:
    """The rules the server enforces (`checkStreamCfg` in nats-server's server/stream.go)
    that do not need the server: names, subjects, and the fields that go together."""
    name = config.get("name")
    if isinstance(name, str) and (bad := _name_problem(name)):
        r.fail("name", *bad)
    elif name == LEASE_STREAM:
        r.fail("name", f"'{name}' is the stream of the reconcilers' lease bucket",
               "choose another name")

    mirror = config.get("mirror")
    sources = config.get("sources") or []
    subjects = config.get("subjects") or []
    no_ack = config.get("no_ack") is True

    # subjects: valid, no duplicates, no overlap within the stream, API subjects need no_ack
    seen: SubjectIndex[tuple[int, str]] = SubjectIndex()
    for index, subject in enumerate(subjects):
        path = f"subjects.{index}"
        if bad := _subject_problem(subject):
            r.fail(path, *bad)
            continue
        first = seen.first_collision(subject)
        if first is None:
            seen.add(subject, (index, subject))
        else:
            other_index, other = first
            other_line = r.where(f"subjects.{other_index}").line
            if other == subject:
                r.fail(
                    path,
                    f"'{subject}' is already listed at line {other_line}",
                    "remove one of them",
                )
            else:
                if subject_is_subset(subject, other):
                    hint = f"remove '{subject}': '{other}' already covers it"
                elif subject_is_subset(other, subject):
                    hint = f"remove '{other}': '{subject}' already covers it"
                else:
                    hint = "a message may match only one subject of a stream: narrow one of them"
                r.fail(path, f"'{subject}' overlaps '{other}' (line {other_line})", hint)
        if subject == ">":
            if not no_ack:
                r.fail(
                    path,
                    "'>' captures every subject, which needs no_ack: true",
                    "add no_ack: true, or list narrower subjects",
                )
            replicas = config.get("num_replicas")
            if isinstance(replicas, int) and replicas > 1:
                r.fail(
                    path,
                    "'>' captures every subject, which needs num_replicas: 1",
                    "write num_replicas: 1, or list narrower subjects",
                )
        elif not no_ack and subject[0] in "$*>":  # others cannot reach the server's spaces
            for space, allowed in (
                ("$JS.>", "$JS.EVENT.>"),
                ("$JSC.>", None),
                ("$NRG.>", None),
                ("$SYS.>", "$SYS.ACCOUNT.>"),
            ):
                if subjects_collide(subject, space) and not (
                    allowed and subject_is_subset(subject, allowed)
                ):
                    r.fail(
                        path,
                        f"'{subject}' overlaps the server's own subjects ({space}), "
                        "which needs no_ack: true",
                        "choose other subjects, or add no_ack: true",
                    )
                    break

    _check_limits(r, config)
    _check_flags(r, config)
    description = config.get("description")
    if isinstance(description, str) and len(description) <= MAX_DESCRIPTION_LEN:
        size = len(description.encode())
        if size > MAX_DESCRIPTION_LEN:  # the server counts bytes
            r.fail(
                "description",
                f"the text takes {size} bytes in UTF-8, more than {MAX_DESCRIPTION_LEN}",
                f"shorten it to at most {MAX_DESCRIPTION_LEN} bytes "
                "(a non-ASCII character takes 2 to 4)",
            )
    if mirror is not None:
        _check_mirror(r, config, mirror)
    for index, source in enumerate(sources):
        _check_source(r, f"sources.{index}", source)
    _check_duplicate_sources(r, sources)

    transform = config.get("subject_transform")
    if isinstance(transform, dict):
        _check_transform(r, "subject_transform", transform)

    if config.get("mirror_direct") is True and mirror is None:
        r.fail(
            "mirror_direct",
            "mirror_direct serves direct gets for a mirror's origin, and this stream has no "
            "mirror",
            "remove mirror_direct, or add a mirror",
        )

    republish = config.get("republish")
    if isinstance(republish, dict):
        _check_republish(r, config, republish)

    placement = config.get("placement")
    if isinstance(placement, dict) and placement.get("preferred"):
        r.fail(
            "placement.preferred",
            "the server does not accept a preferred server in a stream's placement",
            "remove preferred",
        )

    metadata = config.get("metadata")
    if isinstance(metadata, dict):
        for key in metadata:
            if key.startswith("_nats."):
                r.fail(
                    f"metadata.{key}",
                    "keys starting with '_nats.' belong to the server, which overwrites them",
                    "choose another key",
                )
        size = sum(  # the plan never sends '_nats.' keys, reported above
            len(k.encode()) + len(str(v).encode())
            for k, v in metadata.items()
            if not k.startswith("_nats.")
        )
        if size > MAX_METADATA_BYTES:
            r.fail(
                "metadata",
                f"keys and values take {size} bytes, more than {MAX_METADATA_BYTES}",
                "move large values elsewhere",
            )

    if config.get("persist_mode") == "async":
        at = "persist_mode"
        if config.get("storage") == "memory":
            r.fail(
                at,
                "async persistence needs file storage",
                "remove persist_mode, or use storage: file",
            )
        replicas = config.get("num_replicas")
        if isinstance(replicas, int) and replicas > 1:
            r.fail(
                at,
                "async persistence does not work with num_replicas above 1",
                "remove persist_mode, or use num_replicas: 1",
            )
        if config.get("allow_atomic") is True:
            r.fail(
                at,
                "async persistence does not work with allow_atomic",
                "remove persist_mode or allow_atomic",
            )


def _check_limits(r: _Reader, config: Mapping[str, Any]) -> None:
    replicas = config.get("num_replicas")
    if isinstance(replicas, int) and not 1 <= replicas <= MAX_REPLICAS:
        r.fail(
            "num_replicas",
            f"{replicas} is out of range",
            f"write a number from 1 to {MAX_REPLICAS}",
        )

    def written(path: str) -> str:
        """A duration as the manifest wrote it."""
        return r.raw.get(path) or format_duration(config[path])

    max_age = config.get("max_age")
    window = config.get("duplicate_window")
    if isinstance(max_age, int) and 0 < max_age < MIN_MAX_AGE:
        r.fail(
            "max_age",
            f"{written('max_age')} is below the minimum of 100ms",
            "write at least 100ms, or 0 for no age limit",
        )
    if isinstance(window, int) and 0 < window < MIN_DUPLICATE_WINDOW:
        r.fail(
            "duplicate_window",
            f"{written('duplicate_window')} is below the minimum of 100ms",
            "write at least 100ms, or 0 for the default (2m, or max_age when shorter)",
        )
    elif isinstance(window, int) and isinstance(max_age, int) and 0 < max_age < window:
        r.fail(
            "duplicate_window",
            f"{written('duplicate_window')} is longer than max_age ({written('max_age')})",
            f"write at most {format_duration(max_age)}",
        )

    ttl = config.get("subject_delete_marker_ttl")
    if isinstance(ttl, int) and 0 < ttl < MIN_DELETE_MARKER_TTL:
        r.fail(
            "subject_delete_marker_ttl",
            f"{written('subject_delete_marker_ttl')} is below the minimum of 1s",
            "write at least 1s, or 0 for no delete markers",
        )


def _check_flags(r: _Reader, config: Mapping[str, Any]) -> None:
    def on(flag: str) -> bool:
        return config.get(flag) is True

    def off(flag: str) -> bool:
        return config.get(flag) is False

    ttl = config.get("subject_delete_marker_ttl")
    # with delete markers, deny_purge: true is reported below (the plan turns it off)
    if on("deny_purge") and on("allow_rollup_hdrs") and not (isinstance(ttl, int) and ttl > 0):
        r.fail(
            "allow_rollup_hdrs",
            "rollups purge messages, which deny_purge: true forbids",
            "set deny_purge or allow_rollup_hdrs to false",
        )

    for cause, active in (
        ("subject_delete_marker_ttl", isinstance(ttl, int) and ttl > 0),
        ("allow_msg_schedules", on("allow_msg_schedules")),
    ):
        if not active:
            continue
        # the server silently turns these on/off: say so, or the plan sees drift forever
        if cause == "subject_delete_marker_ttl" and off("allow_msg_ttl"):
            r.fail(
                "allow_msg_ttl",
                f"{cause} needs message TTLs, so the server turns this on",
                "write allow_msg_ttl: true, or remove the line",
            )
        if off("allow_rollup_hdrs"):
            r.fail(
                "allow_rollup_hdrs",
                f"{cause} needs rollups, so the server turns this on",
                "write allow_rollup_hdrs: true, or remove the line",
            )
        if on("deny_purge"):
            r.fail(
                "deny_purge",
                f"{cause} needs purges, so the server turns this off",
                "write deny_purge: false, or remove the line",
            )

    if on("discard_new_per_subject"):
        at = "discard_new_per_subject"
        if config.get("discard") != "new":
            r.fail(at, "needs discard: new", "add discard: new")
        per_subject = config.get("max_msgs_per_subject")
        if not (isinstance(per_subject, int) and per_subject > 0):
            r.fail(
                at,
                "needs max_msgs_per_subject above 0",
                "set max_msgs_per_subject, e.g. max_msgs_per_subject: 1",
            )

    if on("allow_msg_counter"):
        at = "allow_msg_counter"
        if config.get("discard") == "new":
            r.fail(at, "a counter stream cannot use discard: new", "remove discard: new")
        if on("allow_msg_ttl"):
            r.fail(at, "a counter stream cannot use message TTLs", "remove allow_msg_ttl: true")
        elif isinstance(ttl, int) and ttl > 0:
            r.fail(
                at,
                "a counter stream cannot use message TTLs, which subject_delete_marker_ttl "
                "turns on",
                "remove subject_delete_marker_ttl",
            )
        if on("allow_msg_schedules"):
            r.fail(
                at,
                "a counter stream cannot use message schedules",
                "remove allow_msg_schedules: true",
            )
        if config.get("retention", "limits") != "limits":
            r.fail(
                at,
                "a counter stream needs retention: limits",
                "write retention: limits, or leave retention out",
            )

    if on("allow_msg_schedules"):
        at = "allow_msg_schedules"
        if config.get("discard") == "new":
            r.fail(at, "message schedules cannot use discard: new", "remove discard: new")
        if config.get("sources"):
            r.fail(
                at,
                "a stream with sources cannot use message schedules",
                "remove allow_msg_schedules or sources",
            )


_NOT_ON_MIRROR: Final = (
    ("subjects", "a mirror stores its origin's subjects: it cannot have subjects of its own"),
    ("sources", "a stream cannot be a mirror and have sources"),
    ("first_seq", "a mirror cannot set first_seq"),
    ("allow_msg_counter", "a mirror cannot be a counter stream"),
    ("allow_atomic", "a mirror cannot accept atomic publishes"),
    ("allow_batched", "a mirror cannot accept batched publishes"),
    ("allow_msg_schedules", "a mirror cannot use message schedules"),
    ("subject_delete_marker_ttl", "a mirror cannot add delete markers"),
)


def _check_mirror(r: _Reader, config: Mapping[str, Any], mirror: Mapping[str, Any]) -> None:
    for key, message in _NOT_ON_MIRROR:
        value = config.get(key)
        if value is True or (not isinstance(value, bool) and value):
            r.fail(key, message, f"remove {key}, or the mirror")
    _check_source(r, "mirror", mirror)


def _check_source(r: _Reader, path: str, source: Mapping[str, Any]) -> None:
    """What a mirror and each source share: names, filters, transforms, durable consumer."""
    name = source.get("name")
    if isinstance(name, str) and (bad := _name_problem(name)):
        r.fail(f"{path}.name", *bad)
    filter_subject = source.get("filter_subject")
    if filter_subject and (bad := _subject_problem(filter_subject)):
        r.fail(f"{path}.filter_subject", *bad)
    transforms = source.get("subject_transforms") or []
    if filter_subject and transforms:
        r.fail(
            f"{path}.filter_subject",
            "filter_subject and subject_transforms cannot be used together",
            "move the filter into subject_transforms as src",
        )
    srcs: list[tuple[int, str]] = []
    for index, transform in enumerate(transforms):
        at = f"{path}.subject_transforms.{index}.src"
        if not _check_transform(r, f"{path}.subject_transforms.{index}", transform):
            continue
        src = transform.get("src") or ""
        for other_index, other in srcs:
            # the server's tests differ: any overlap for a mirror, a subset for a source
            if _filters_overlap(src, other) if path == "mirror" else (
                _filter_within(src, other) or _filter_within(other, src)
            ):
                line = r.where(f"{path}.subject_transforms.{other_index}.src").line
                r.fail(
                    at,
                    f"'{src}' overlaps '{other}' (line {line})",
                    "the filters of one source must not overlap: narrow one of them",
                )
                break
        else:
            srcs.append((index, src))
    consumer = source.get("consumer")
    if isinstance(consumer, dict):
        at = f"{path}.consumer"
        consumer_name = consumer.get("name")
        if isinstance(consumer_name, str) and (bad := _name_problem(consumer_name)):
            r.fail(f"{at}.name", *bad)
        deliver = consumer.get("deliver_subject")
        if isinstance(deliver, str) and (_subject_problem(deliver) or not _is_literal(deliver)):
            r.fail(
                f"{at}.deliver_subject",
                f"'{deliver}' is not a subject without wildcards",
                "write a plain subject such as 'deliver.orders'",
            )
        for key in ("opt_start_seq", "opt_start_time", "filter_subject"):
            if source.get(key):
                r.fail(
                    f"{path}.{key}",
                    f"{key} cannot be combined with a durable consumer",
                    f"remove {key}, or the consumer",
                )
    external = source.get("external")
    if isinstance(external, dict):
        for key in ("api", "deliver"):
            prefix = external.get(key)
            if prefix and (_subject_problem(prefix) or not _is_literal(prefix)):
                r.fail(
                    f"{path}.external.{key}",
                    f"'{prefix}' is not a subject without wildcards",
                    "write a plain subject prefix such as '$JS.hub.API'",
                )
            elif key == "api" and prefix and subjects_collide(prefix, _API_PREFIX):
                r.fail(
                    f"{path}.external.api",
                    f"'{prefix}' overlaps this server's own API ({_API_PREFIX})",
                    "write the prefix under which the other domain's API is imported, "
                    "such as '$JS.hub.API'",
                )


_API_PREFIX: Final = "$JS.API"


def _filters_overlap(a: str, b: str) -> bool:
    """The server's overlap test of two mirror filters (an empty filter is a literal '')."""
    if a == b:
        return True
    if not a or not b:
        return (a or b) == ">"
    return subjects_collide(a, b)


def _filter_within(a: str, b: str) -> bool:
    """The server's subset test of two source filters (an empty filter is a literal '')."""
    if b == ">":
        return True
    return bool(a) and bool(b) and subject_is_subset(a, b)


def _check_transform(r: _Reader, path: str, transform: Mapping[str, Any]) -> bool:
    """A stream, mirror or source transform; whether its src is a valid subject (or none)."""
    src = transform.get("src") or ""
    dest = transform.get("dest") or ""
    if src and (bad := _subject_problem(src)):
        r.fail(f"{path}.src", *bad)
        return False
    if error := transform_error(src, dest):
        r.fail(f"{path}.dest", error, _TRANSFORM_HINT)
    return True


_TRANSFORM_HINT: Final = (
    "write a subject whose tokens are literals, $n or {{wildcard(n)}} for the source's n-th "
    "'*', other functions of them, and '>' at the end when the source ends in '>'"
)


def _check_republish(r: _Reader, config: Mapping[str, Any], republish: Mapping[str, Any]) -> None:
    src = republish.get("src") or ">"  # the server's default, which the plan writes out
    dest = republish.get("dest") or ""
    if bad := _subject_problem(src):
        r.fail("republish.src", *bad)
        return
    transform = config.get("subject_transform")
    subjects = config.get("subjects") or []
    if (
        src == ">"
        and dest == ">"
        and isinstance(transform, dict)
        and len(subjects) == 1
        and transform.get("src") == subjects[0]
        and transform.get("dest")
    ):
        shown = transform["dest"]
        r.fail(
            "republish",
            "'>' to '>' next to a subject_transform of the stream's only subject would be "
            f"read by the server as a republish of '{shown}'",
            f"write src: '{shown}' and dest: '{shown}'",
        )
        return
    name = config.get("name")
    own = subjects or (
        [name]
        if isinstance(name, str) and "mirror" not in config and not config.get("sources")
        else []
    )
    for subject in own:
        if dest and not _subject_problem(subject) and subjects_collide(dest, subject):
            r.fail(
                "republish.dest",
                f"'{dest}' overlaps the stream's own subject '{subject}', "
                "so republished messages would loop back into the stream",
                "choose a destination outside the stream's subjects",
            )
            return
    if error := transform_error(src, dest, mapping=False):
        r.fail("republish.dest", error, _TRANSFORM_HINT)


def _check_duplicate_sources(r: _Reader, sources: Sequence[Mapping[str, Any]]) -> None:
    # what the server tells sources apart by (`composeIName`, `composeCName`)
    seen: dict[tuple[Any, ...], int] = {}
    consumers: dict[tuple[Any, ...], int] = {}
    for index, source in enumerate(sources):
        external = source.get("external")
        api = external.get("api") if isinstance(external, dict) else None
        consumer = source.get("consumer")
        consumer_name = consumer.get("name") if isinstance(consumer, dict) else None
        transforms = tuple(
            (t.get("src") or ">", t.get("dest") or ">")
            for t in source.get("subject_transforms") or []
        )
        identity = (
            source.get("name"),
            api,
            consumer_name,
            transforms or ((source.get("filter_subject") or ">", ">"),),
        )
        if identity in seen:
            line = r.where(f"sources.{seen[identity]}").line
            r.fail(
                f"sources.{index}",
                f"stream '{source.get('name')}' is already sourced the same way at line {line}",
                "remove one of them",
            )
        else:
            seen[identity] = index
        if consumer_name is not None:
            key = (source.get("name"), api, consumer_name)
            if key in consumers:
                line = r.where(f"sources.{consumers[key]}").line
                r.fail(
                    f"sources.{index}.consumer.name",
                    f"consumer '{consumer_name}' of stream '{source.get('name')}' already "
                    f"sources it at line {line}",
                    "give each source of one stream its own consumer name",
                )
            else:
                consumers[key] = index


# --- checks across all documents --------------------------------------------------------------


@dataclass
class _Claim:
    subject: str
    stream: str
    location: Location
    implicit: bool


def _check_across(docs: Sequence[_Document]) -> None:
    """Duplicate stream names and overlapping subjects, reported at the later declaration;
    then what the server checks against the streams a mirror or its sources read from."""
    _check_names_and_subjects(docs)
    declared: dict[str, StreamSpec] = {}
    for doc in docs:
        if doc.spec is not None and not doc.failed:
            declared.setdefault(doc.spec.name, doc.spec)
    for doc in docs:
        if doc.spec is not None and not doc.failed and declared.get(doc.spec.name) is doc.spec:
            doc.problems.extend(_check_origins(doc.spec, declared))


def _stored_subjects(config: Mapping[str, Any]) -> list[str]:
    """The subjects the server stores for a stream: its name when it lists none."""
    subjects = list(config.get("subjects") or [])
    if not subjects and "mirror" not in config and not config.get("sources"):
        subjects = [config["name"]]
    return subjects


def _origins(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(path, mirror or source) of every stream this one reads from in its own domain."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    mirror = config.get("mirror")
    if isinstance(mirror, dict):
        out.append(("mirror", mirror))
    for index, source in enumerate(config.get("sources") or []):
        out.append((f"sources.{index}", source))
    return [(path, s) for path, s in out if "external" not in s]


def _check_origins(spec: StreamSpec, declared: Mapping[str, StreamSpec]) -> list[Problem]:
    """The server's checks that read the origin streams, when the manifests declare them:
    what a mirror inherits, message sizes, delivery prefixes, and cycles."""
    config = spec.config
    problems: list[Problem] = []
    if "mirror" not in config and not config.get("sources"):
        return problems  # reads from no stream: nothing below applies

    def fail(path: str, message: str, hint: str) -> None:
        problems.append(Problem(spec.where(path), path, message, hint))

    own_size = config.get("max_msg_size", -1)
    origin_subjects: list[str] = []
    for path, source in _origins(config):
        origin = declared.get(source.get("name", ""))
        if origin is None:
            continue
        origin_subjects.extend(_stored_subjects(origin.config))
        their_size = origin.config.get("max_msg_size", -1)
        if 0 < own_size < their_size:
            fail(
                "max_msg_size",
                f"{own_size} is below the max_msg_size of stream '{origin.name}' "
                f"({their_size}), which this stream {'mirrors' if path == 'mirror' else 'sources'}",
                f"write at least {their_size}, or remove max_msg_size",
            )
        if path == "mirror":
            direct = origin.config.get("allow_direct") is True
            if (config.get("mirror_direct") is True) != direct:
                at = "mirror_direct" if "mirror_direct" in config else "mirror.name"
                if direct:
                    fail(
                        at,
                        f"stream '{origin.name}' allows direct gets, so its mirror serves them "
                        "too and the server wants that written",
                        "write mirror_direct: true",
                    )
                else:
                    fail(
                        at,
                        f"stream '{origin.name}' does not allow direct gets, so its mirror "
                        "cannot serve them",
                        f"remove mirror_direct, or write allow_direct: true in '{origin.name}'",
                    )

    for path, source in _origins(config) + _external(config):
        external = source.get("external")
        prefix = external.get("deliver") if isinstance(external, dict) else None
        if not prefix or _subject_problem(prefix) or not _is_literal(prefix):
            continue
        for subject in origin_subjects:
            if subjects_collide(subject, f"{prefix}.{subject}"):
                fail(
                    f"{path}.external.deliver",
                    f"messages delivered under '{prefix}' would match the subject '{subject}' "
                    "of a stream this one reads from",
                    "choose a delivery prefix that no subject of those streams matches",
                )
                break

    if cycle := _find_cycle(spec, declared):
        path, through = cycle
        fail(
            path,
            f"reading from '{through}' leads back to stream '{spec.name}': the server refuses "
            "a cycle of mirrors and sources",
            "remove this mirror or source, or give the sources on the way a filter_subject "
            "that the subjects of the stream they read from do not match",
        )
    return problems


def _external(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    mirror = config.get("mirror")
    if isinstance(mirror, dict) and "external" in mirror:
        out.append(("mirror", mirror))
    for index, source in enumerate(config.get("sources") or []):
        if "external" in source:
            out.append((f"sources.{index}", source))
    return out


def _find_cycle(
    spec: StreamSpec, declared: Mapping[str, StreamSpec]
) -> tuple[str, str] | None:
    """The server's cycle check (`checkStreamCfg`), walking the declared streams as if they
    all existed: (path of this stream's mirror or source that leads back, the stream it
    names), or None."""
    # (config, subjects as the server sees them, the first step taken from `spec`)
    queue: list[tuple[Mapping[str, Any], list[str], tuple[str, str] | None]] = [
        (spec.config, list(spec.config.get("subjects") or []), None)
    ]
    visited: set[str] = set()
    while queue:
        config, subjects, first = queue.pop(0)
        visited.add(config["name"])
        for path, source in _origins(config):
            name = source.get("name", "")
            step = first or (f"{path}.name", name)
            if path == "mirror":
                if name in visited:
                    return step
            elif name in visited:
                filter_subject = source.get("filter_subject") or ""
                if not filter_subject or any(
                    subjects_collide(s, filter_subject) for s in subjects
                ):
                    return step
                continue
            origin = declared.get(name)
            if origin is not None and name not in visited:
                queue.append((origin.config, _stored_subjects(origin.config), step))
    return None


def _check_names_and_subjects(docs: Sequence[_Document]) -> None:
    names: dict[str, Location] = {}
    index: SubjectIndex[_Claim] = SubjectIndex()
    for doc in docs:
        spec = doc.spec
        if spec is None or not isinstance(spec.config.get("name"), str) or _name_problem(spec.name):
            continue
        name_at = spec.where("name")
        if spec.name in names:
            doc.problems.append(
                Problem(
                    name_at,
                    "name",
                    f"stream '{spec.name}' is already declared at {names[spec.name]}",
                    "rename this stream, or remove one of the two declarations",
                )
            )
            continue
        names[spec.name] = name_at
        if not doc.subjects_ok:
            continue
        config = spec.config
        claims: list[tuple[str, _Claim]] = []
        subjects = config.get("subjects") or []
        for i, subject in enumerate(subjects):
            if not _subject_problem(subject):
                claims.append(
                    (
                        f"subjects.{i}",
                        _Claim(subject, spec.name, spec.where(f"subjects.{i}"), False),
                    )
                )
        if not subjects and "mirror" not in config and not config.get("sources"):
            claims.append(("name", _Claim(spec.name, spec.name, name_at, True)))
        for path, claim in claims:
            other = index.first_collision(claim.subject)
            if other is None:
                continue
            theirs = (
                f"the default subject of stream '{other.stream}'"
                if other.implicit
                else f"'{other.subject}' of stream '{other.stream}'"
            )
            if claim.implicit:
                message = (
                    f"without subjects, stream '{spec.name}' takes the subject '{claim.subject}', "
                    f"which overlaps {theirs} ({other.location})"
                )
                hint = "list subjects that no other stream takes"
            else:
                message = f"'{claim.subject}' overlaps {theirs} ({other.location})"
                hint = "a message subject can belong to one stream only: narrow one of them"
            doc.problems.append(Problem(claim.location, path, message, hint))
        for _, claim in claims:
            index.add(claim.subject, claim)
