import pytest

from thresher.errors import ConfigError
from thresher.storage.relevant import RelevantFilenames, glob_match

NAMES = [
    "image_1.png",
    "image_2.png",
    "subdir/image_2.png",
    "subdir/image_3.png",
    "subdir/image_41.png",
    "subdir/image_42.png",
    "other/image_41.png",
]


def test_exact_names_from_first_steps():
    # first_steps.rst: keep image_1.png and subdir/image_3.png only.
    r = RelevantFilenames.parse("image_1.png\nsubdir/image_3.png\n")
    assert r.filter(NAMES) == (
        ["image_1.png", "subdir/image_3.png"],
        [n for n in NAMES if n not in ("image_1.png", "subdir/image_3.png")],
    )


def test_prefix_with_gitignore_patterns_and_reinclude():
    # Worked by hand: 'subdir/*' keeps the 4 files in subdir/; 'subdir/image_4*' drops image_41 and
    # image_42; '!subdir/image_41.png' takes image_41 back. Outside subdir/ nothing is kept.
    r = RelevantFilenames.parse("subdir/* subdir/image_4* !subdir/image_41.png")
    keep, _ = r.filter(NAMES)
    assert keep == ["subdir/image_2.png", "subdir/image_3.png", "subdir/image_41.png"]


@pytest.mark.parametrize(
    "line", ["./image_1.png", "../x.png", "sub/../x.png", "/abs.png", "a/* !./b.png"]
)
def test_dot_paths_are_refused_with_line_number(line):
    with pytest.raises(ConfigError, match="line 2"):
        RelevantFilenames.parse(f"image_1.png\n{line}\n", source="rel.txt")


def test_empty_file_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        RelevantFilenames.parse("\n\n")


@pytest.mark.parametrize(
    "pattern,name,expected",
    [
        ("*.png", "a/b/c.png", True),
        ("a/*.png", "a/b/c.png", False),
        ("a/**/c.png", "a/b/c.png", True),
        ("a/**/c.png", "a/c.png", True),
        ("img_?.png", "x/img_1.png", True),
        ("img_[12].png", "img_3.png", False),
    ],
)
def test_glob(pattern, name, expected):
    assert glob_match(pattern, name) is expected
