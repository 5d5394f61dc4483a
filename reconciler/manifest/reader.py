"""The state of reading one file, and of reading one document of it.

A `FileState` lives as long as one file is read: the YAML nodes it may still expand to and
the problems it may still show. A `DocumentReader` is made for each document and dropped
after it: where each field was written, what failed, and the problems found, which it hands
over as an immutable `Document`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from yaml.nodes import Node

from reconciler.model import Location, Places, Problem, StreamSpec

#: YAML nodes visited per document, aliases expanded: stops alias bombs ("billion laughs").
#: A file may visit MAX_NODES plus one node per two bytes of text (no plain YAML node takes
#: less), so that many small documents cannot add up to a bomb either.
MAX_NODES: Final = 100_000
#: problems reported per file; the rest are counted in one last problem
MAX_PROBLEMS_PER_FILE: Final = 100


class TooManyNodes(Exception):
    """More YAML nodes than a document (or the whole file) may expand to."""


class Document(NamedTuple):
    """One YAML document, checked; `spec` is None when it declares no (valid) stream."""

    file: str
    location: Location
    problems: tuple[Problem, ...]
    spec: StreamSpec | None
    subjects_ok: bool
    """Whether the subjects it takes are known, for the overlap check across streams."""
    failed: bool
    """Has problems, some perhaps not shown (past MAX_PROBLEMS_PER_FILE)."""
    warnings: tuple[Problem, ...] = ()
    """What the stream's source format says that is not followed here (NACK's `servers`,
    say): the document still loads."""
    notes: tuple[Problem, ...] = ()
    """Where reading another format changed or filled in a value (NACK's default storage),
    each at the configuration path it concerns: `convert` writes them as comments."""


class FileState:
    """What one file may still spend: YAML nodes, and problems shown."""

    def __init__(self, file: str, node_budget: int) -> None:
        self.file = file
        self.node_budget = node_budget
        self.nodes = 0
        self.reported = 0
        self.dropped = 0

    @classmethod
    def for_text(cls, file: str, text: str) -> FileState:
        return cls(file, node_budget=MAX_NODES + len(text) // 2)

    def show(self) -> bool:
        """Whether one more problem may be shown (else it is counted as dropped)."""
        if self.reported >= MAX_PROBLEMS_PER_FILE:
            self.dropped += 1
            return False
        self.reported += 1
        return True


class DocumentReader:
    """The bookkeeping of one document while it is read: made per document."""

    def __init__(self, state: FileState, node: Node) -> None:
        self.state = state
        self.file = state.file
        self.location = self.loc(node)
        self.problems: list[Problem] = []
        self.failed = False
        self.nodes = 0
        """YAML nodes visited in this document, not yet counted in the file's"""
        self.limit = min(MAX_NODES, state.node_budget - state.nodes)
        """the nodes this document may visit: its own limit, or what the file has left"""
        self.places: dict[str, int] = {}
        """where the value of each field is, by path (`Places.pack`)"""
        self.key_nodes: dict[str, Node] = {}
        """the key of each field, by path: where a field found missing inside it is reported"""
        self.raw: dict[str, str] = {}
        """each scalar as written, by path"""
        self.failed_paths: set[str] = set()
        self.warnings: list[Problem] = []
        self.notes: list[Problem] = []
        self.shown_path: Callable[[str], str] = lambda path: path
        """how a configuration path is named in the file (`spec.maxAge` in a NACK object)"""

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def place(self, path: str, node: Node) -> None:
        """Remember where the value of the field `path` is written."""
        mark = node.start_mark
        self.places[path] = Places.pack(mark.line + 1, mark.column + 1)

    def locations(self) -> Places:
        """Where the value of each field is written."""
        return Places(self.file, self.places)

    def where(self, path: str) -> Location:
        """Where the field `path` (or the nearest field above it) is written."""
        while path:
            at = self.places.get(path)
            if at is not None:
                return Places.unpack(self.file, at)
            path = path.rpartition(".")[0]
        return self.location

    def add(
        self, at: Node | Location | str, path: str, message: str, hint: str | None = None
    ) -> None:
        """Record a problem at a node, a location, or the location of a field path."""
        if isinstance(at, Node):
            location = self.loc(at)
        elif isinstance(at, Location):
            location = at
        else:
            location = self.where(at)
        self.failed_paths.add(path)
        self.failed = True
        if self.state.show():
            self.problems.append(Problem(location, self.shown_path(path), message, hint))

    def add_warning(self, at: Node, path: str, message: str, hint: str | None = None) -> None:
        """Something the document says that is not followed here; it still loads."""
        self.warnings.append(Problem(self.loc(at), path, message, hint))

    def add_note(self, at: Node, path: str, message: str) -> None:
        """A value another format's reading changed or filled in, at configuration `path`."""
        self.notes.append(Problem(self.loc(at), path, message))

    def fail(self, path: str, message: str, hint: str | None = None) -> None:
        """Record a problem at the value of the field `path`."""
        self.add(path, path, message, hint)

    def failed_under(self, path: str) -> bool:
        """Whether the field `path` or any field below it had a problem."""
        prefix = path + "."
        return any(p == path or p.startswith(prefix) for p in self.failed_paths)

    def count(self) -> None:
        """One more YAML node visited; TooManyNodes past the document's or file's budget."""
        self.nodes += 1
        if self.nodes > self.limit:
            raise TooManyNodes

    @property
    def spent(self) -> bool:
        """Whether the file as a whole expanded to more nodes than it may."""
        return self.state.nodes + self.nodes > self.state.node_budget

    def too_many_nodes(self) -> None:
        self.add(
            self.location,
            "",
            f"the document expands to more than {MAX_NODES} YAML nodes (aliases of aliases?)",
            "write the values out instead of nesting aliases",
        )

    def finish(
        self, spec: StreamSpec | None = None, subjects_ok: bool = False, failed: bool = False
    ) -> Document:
        """The document as read; `failed` marks it failed even without a problem of its own
        (the file it is in stopped being read in the middle of it)."""
        self.state.nodes += self.nodes
        self.nodes = 0
        return Document(
            file=self.file,
            location=self.location,
            problems=tuple(self.problems),
            spec=spec,
            subjects_ok=subjects_ok,
            failed=self.failed or failed,
            warnings=tuple(self.warnings),
            notes=tuple(self.notes),
        )
