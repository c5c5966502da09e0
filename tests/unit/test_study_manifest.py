"""A study's manifest (study/manifest.py): every field checked on load with the field named, and clip files read only
when they are plain files of the study folder: no absolute path, no '..', no link out, no hard link, no clips folder
that is a link."""
from __future__ import annotations

import copy
import json
import os

import pytest

from adlightning.study.manifest import StudyError, check_clip, check_manifest, open_clip, read_manifest
from adlightning.study.store import StudyStore
from tests.unit.study_fixtures import make_study


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    return folder, make_study(folder)


def broken(manifest: dict, path: str, value) -> dict:
    """A copy of the manifest with one field (dotted path, list indices as numbers) set to value (or removed)."""
    out = copy.deepcopy(manifest)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = out
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("path, value, message", [
    ("format", 1, "format 1 is not 2: this study was made by an older version"),
    ("id", "a/b", "id must be 1-64 letters"),
    ("id", ["s1"], "id must be 1-64 letters"),
    ("seed", "7", "seed must be an integer"),
    ("seed", True, "seed must be an integer"),
    ("secret", "short", "secret must be 64 hex digits"),
    ("secret", KeyError, "secret must be 64 hex digits"),
    ("organiser_sha256", None, "organiser_sha256 must be 64 hex digits"),
    ("criteria", [], "criteria must be a list of 1-20 names"),
    ("criteria", ["a", "a"], "criteria must not repeat"),
    ("criteria", [{"x": 1}], r"criteria\[0\] must be a non-empty string"),
    ("configs", {"A": {}}, "configs must be an object with exactly A and B"),
    ("configs.B.name", 5, "configs.B.name must be a string"),
    ("configs.A.overrides", [], "configs.A.overrides must be an object"),
    ("pairs", {"p000": {}}, "pairs must be a list"),
    ("pairs", [], "pairs is empty"),
    ("pairs.0", "p000", r"pairs\[0\] must be an object"),
    ("pairs.0.id", ["p000"], r"pairs\[0\].id must be p followed by 3-5 digits"),
    ("pairs.1.id", "p000", r"pairs\[1\].id p000 appears twice"),
    ("pairs.0.index", 1.5, r"pairs\[0\].index must be an integer"),
    ("pairs.0.prompt", None, r"pairs\[0\].prompt must be a non-empty string"),
    ("pairs.0.theme", "", r"pairs\[0\].theme must be a non-empty string"),
    ("pairs.0.files", ["a", "b"], r"pairs\[0\].files must be an object"),
    ("pairs.0.files.B", KeyError, r"pairs\[0\].files has no clip B yet"),
    ("pairs.0.files.A", "/etc/passwd", r"pairs\[0\].files.A must be clips/<32 hex digits>.mp4 .* got '/etc/passwd'"),
    ("pairs.0.files.A", "../../../../etc/passwd", r"pairs\[0\].files.A must be clips/"),
    ("pairs.0.files.A", "clips/../../../etc/passwd", r"pairs\[0\].files.A must be clips/"),
    ("pairs.0.files.A", "clips/" + "0" * 32 + ".mp4/..", r"pairs\[0\].files.A must be clips/"),
    ("pairs.0.files.A", {"path": "x"}, r"pairs\[0\].files.A must be clips/"),
])
def test_every_field_is_checked_and_named(study, path, value, message):
    folder, manifest = study
    with pytest.raises(StudyError, match=f"^manifest.json: {message}"):
        check_manifest(broken(manifest, path, value))


def test_a_clip_used_twice_is_refused(study):
    folder, manifest = study
    with pytest.raises(StudyError, match=r"pairs\[1\].files.A .* is used twice"):
        check_manifest(broken(manifest, "pairs.1.files.A", manifest["pairs"][0]["files"]["A"]))


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not readable JSON"), (b"\xff\xfe", "not readable JSON"), (b"[" * 100000, "not readable JSON"),
    (b"[1, 2]", "must hold a JSON object"),
])
def test_an_unreadable_manifest_is_one_error(study, content, message):
    folder, _ = study
    (folder / "manifest.json").write_bytes(content)
    with pytest.raises(StudyError, match=message):
        read_manifest(folder)


def test_a_manifest_that_is_a_link_is_refused(study, tmp_path):
    folder, manifest = study
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(manifest))
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(elsewhere)
    with pytest.raises(StudyError, match="not a regular file"):
        read_manifest(folder)


def test_clips_must_be_plain_files_inside_the_study(study, tmp_path):
    folder, manifest = study
    name = manifest["pairs"][0]["files"]["A"]
    check_clip(folder, name)
    fd, size = open_clip(folder, name)
    os.close(fd)
    assert size == (folder / name).stat().st_size
    # a link to a file outside
    (folder / name).unlink()
    (folder / name).symlink_to("/etc/passwd")
    with pytest.raises(StudyError, match="not a regular file"):
        check_clip(folder, name)
    with pytest.raises(StudyError, match="cannot be opened"):
        open_clip(folder, name)
    with pytest.raises(StudyError, match="not a regular file"):
        StudyStore(folder)
    # a hard link (another name of a file elsewhere on the disk)
    (folder / name).unlink()
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    os.link(outside, folder / name)
    with pytest.raises(StudyError, match="hard link"):
        check_clip(folder, name)
    with pytest.raises(StudyError, match="not a plain file"):
        open_clip(folder, name)
    # the clips folder itself a link out
    os.unlink(folder / name)
    (folder / "clips").rename(tmp_path / "real_clips")
    (folder / "clips").symlink_to(tmp_path / "real_clips")
    with pytest.raises(StudyError, match="clips folder leads outside"):
        check_clip(folder, manifest["pairs"][1]["files"]["A"])
    with pytest.raises(StudyError, match="not a study clip name"):
        check_clip(folder, "../outside.mp4")


def test_messages_carry_no_path_of_the_machine(study):
    folder, manifest = study
    (folder / manifest["pairs"][2]["files"]["B"]).unlink()
    with pytest.raises(StudyError) as err:
        StudyStore(folder)
    assert str(folder.parent) not in str(err.value) and "is missing" in str(err.value)
