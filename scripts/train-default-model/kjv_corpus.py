"""The King James Bible from Debian's `bible-kjv-text`, as chapters split into training and held-out sets.

`bible -l100000 gen1:1-re22:21` prints every chapter as a "Book N" heading line followed by one line per
verse ("  7 And God made ..."); a line width of 100000 keeps each verse on one line. A chapter becomes one
document: its heading, then its verses one per line without their numbers. Every HELD_OUT_EVERY-th chapter
(counted over the whole Bible in canonical order) is held out for validation, so the held-out text covers
every part of the Bible (law, history, poetry, prophets, gospels, letters) without overlapping training.
"""

import re
import subprocess
from dataclasses import dataclass

HELD_OUT_EVERY = 20
FIRST_NEW_TESTAMENT_BOOK = "Matthew"

_HEADING = re.compile(r"^(\S.*) (\d+)$")
_VERSE = re.compile(r"^\s+(\d+) (.+)$")


@dataclass
class Chapter:
    book: str
    number: int
    verses: list  # verse texts without their numbers, in order
    new_testament: bool

    @property
    def text(self) -> str:
        return f"{self.book} {self.number}\n" + "\n".join(self.verses) + "\n"


def dump_bible_text() -> str:
    """The whole Authorized Version as printed by Debian's `bible` program (package bible-kjv)."""
    return subprocess.run(["bible", "-l100000", "gen1:1-re22:21"], check=True, capture_output=True,
                          text=True).stdout


def parse_chapters(dump: str) -> list:
    chapters = []
    in_new_testament = False
    for line in dump.splitlines():
        if not line.strip():
            continue
        if (verse := _VERSE.match(line)) is not None:
            if not chapters or int(verse.group(1)) != len(chapters[-1].verses) + 1:
                raise ValueError(f"verse out of order: {line[:60]!r}")
            chapters[-1].verses.append(verse.group(2).strip())
        elif (heading := _HEADING.match(line)) is not None:
            in_new_testament = in_new_testament or heading.group(1) == FIRST_NEW_TESTAMENT_BOOK
            chapters.append(Chapter(heading.group(1), int(heading.group(2)), [], in_new_testament))
        else:
            raise ValueError(f"unexpected line in the bible dump: {line[:60]!r}")
    verse_count = sum(len(c.verses) for c in chapters)
    if len(chapters) != 1189 or verse_count != 31102:
        raise ValueError(f"expected 1189 chapters and 31102 verses, got {len(chapters)} and {verse_count}")
    return chapters


def split_chapters(chapters: list) -> tuple:
    """(training chapters, held-out chapters): chapter i (0-based) is held out when i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1."""
    train = [c for i, c in enumerate(chapters) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    held_out = [c for i, c in enumerate(chapters) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return train, held_out


def load_split() -> tuple:
    return split_chapters(parse_chapters(dump_bible_text()))


if __name__ == "__main__":
    train, held_out = load_split()
    print(f"{len(train)} training chapters, {len(held_out)} held-out chapters")
    print(held_out[0].text[:300])
