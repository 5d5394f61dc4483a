"""Watch mode loads every manifest on every pass: a pass where no file changed reuses the
last result, and any change (a file's bytes, a file added or removed) checks everything again."""

from __future__ import annotations

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
