"""Watch mode loads every manifest on every pass: a pass where no file changed reuses the
last result, and any change (a file's bytes, a file added or removed) checks everything again."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from reconciler.manifest import load_manifests


def test_unchanged_files_give_the_same_result_and_changes_are_checked_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nsubjects: [a]\n")
    (tmp_path / "b.yaml").write_text("name: b\nsubjects: [b]\n")
    first = load_manifests([tmp_path])
    assert first.ok and [s.name for s in first.specs] == ["a", "b"]
    assert load_manifests([tmp_path]) is first

    (tmp_path / "b.yaml").write_text("name: a\nsubjects: [b]\n")  # now a duplicate name
    second = load_manifests([tmp_path])
    assert [str(p) for p in second.problems] == [
        f"{tmp_path}/b.yaml:1:7: name: stream 'a' is already declared at {tmp_path}/a.yaml:1:7; "
        "rename this stream, or remove one of the two declarations"
    ]
    assert load_manifests([tmp_path]) is second

    (tmp_path / "b.yaml").unlink()
    third = load_manifests([tmp_path])
    assert third.ok and [s.name for s in third.specs] == ["a"]
    (tmp_path / "c.yaml").write_text("name: c\nsubjects: [a]\n")  # overlaps a's subject
    fourth = load_manifests([tmp_path])
    assert [p.path for p in fourth.problems] == ["subjects.0"]
    assert load_manifests([tmp_path / "a.yaml"]).files == (f"{tmp_path}/a.yaml",)


CASES = int(os.environ.get("RECONCILER_ACROSS_CASES", "300"))


def test_loads_through_the_cache_find_what_a_fresh_load_finds(tmp_path: Path) -> None:
    """A seeded campaign of edits to three files (names taken twice, subjects that overlap,
    mirrors, limits changed): after each, the cached load (which skips the checks across
    documents when they name the same streams and subjects as a clean load before) reports
    exactly what a load with nothing cached does. RECONCILER_ACROSS_CASES sets the edits."""
    rng = random.Random(4242)

    def document(own: str) -> str:
        """Mostly a stream of this file's own, with subjects of its own; now and then a
        name or subjects another file may hold too, or a mirror."""
        name = f"{own}{rng.choice([1, 2])}" if rng.random() < 0.9 else rng.choice("xy")
        if rng.random() < 0.08:
            return f"name: {name}\nmirror: {{name: {rng.choice(['f01', 'x', 'y'])}}}\n"
        taken = rng.choice([[f"{name}.*"], [f"{name}.a", f"{name}.b"], [], ["shared.*"],
                            [f"{own}.>"], ["shared.x", f"{name}.*"]])
        return (f"name: {name}\nsubjects: {json.dumps(taken)}\n"
                f"max_msgs: {rng.choice([1, 10, 100])}\n")

    files = [tmp_path / f"f{i}.yaml" for i in range(3)]
    for f in files:
        f.write_text(document(f.stem))
    for step in range(CASES):
        f = rng.choice(files)
        text = f.read_text()
        kind = rng.random()
        if kind < 0.5:  # the same streams with another limit
            limit = rng.choice(["2", "20", "200", "lots"])
            f.write_text(re.sub(r"max_msgs: \w+", f"max_msgs: {limit}", text)
                         if "max_msgs" in text else text + "\n")
        elif kind < 0.75:  # the same streams, one with other subjects
            taken = rng.choice([["shared.*"], ["f0.>"], ["f11.*"], [">"], ["own.*"],
                                ["two words"], ["a..b"]])
            f.write_text(re.sub(r"subjects: .*", f"subjects: {json.dumps(taken)}", text,
                                count=1))
        else:
            f.write_text("---\n".join(document(f.stem) for _ in range(rng.choice([1, 2]))))
        cached = load_manifests([tmp_path])
        fresh = load_manifests([tmp_path], keep=False)
        assert [str(p) for p in cached.problems] == [str(p) for p in fresh.problems], step
        assert [(s.name, s.location) for s in cached.specs] == [
            (s.name, s.location) for s in fresh.specs], step
