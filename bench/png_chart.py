"""A tiny horizontal-bar-chart PNG writer in pure Python (zlib only): matplotlib is not installed
in this venv, and a chart of a few bars does not justify a new dependency.

    write_png(path, [Panel("title", [("label", value, "value text"), ...]), ...])
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# 5x7 glyphs, one int per row, bit 4 = leftmost pixel. Lowercase is drawn as uppercase.
_FONT = {
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14), "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14), "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8), "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12), "A": (14, 17, 17, 31, 17, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14), "D": (28, 18, 17, 17, 17, 18, 28), "E": (31, 16, 16, 30, 16, 16, 31),
    "F": (31, 16, 16, 30, 16, 16, 16), "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14), "J": (7, 2, 2, 2, 2, 18, 12), "K": (17, 18, 20, 24, 20, 18, 17),
    "L": (16, 16, 16, 16, 16, 16, 31), "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14), "P": (30, 17, 17, 30, 16, 16, 16), "Q": (14, 17, 17, 17, 21, 18, 13),
    "R": (30, 17, 17, 30, 20, 18, 17), "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14), "V": (17, 17, 17, 17, 17, 10, 4), "W": (17, 17, 17, 21, 21, 21, 10),
    "X": (17, 17, 10, 4, 10, 17, 17), "Y": (17, 17, 17, 10, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    " ": (0,) * 7, ".": (0, 0, 0, 0, 0, 12, 12), ",": (0, 0, 0, 0, 12, 4, 8), "-": (0, 0, 0, 31, 0, 0, 0),
    "+": (0, 4, 4, 31, 4, 4, 0), "/": (1, 1, 2, 4, 8, 16, 16), "%": (24, 25, 2, 4, 8, 19, 3),
    ":": (0, 12, 12, 0, 12, 12, 0), ";": (0, 12, 12, 0, 12, 4, 8), "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8),
    "=": (0, 0, 31, 0, 31, 0, 0), "_": (0, 0, 0, 0, 0, 0, 31), "<": (2, 4, 8, 16, 8, 4, 2),
    ">": (8, 4, 2, 1, 2, 4, 8), "*": (0, 4, 21, 14, 21, 4, 0), "?": (14, 17, 1, 2, 4, 0, 4),
}
SCALE = 2  # pixels per font dot
CHAR_W, CHAR_H = 6 * SCALE, 8 * SCALE
COLORS = ((66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188), (0, 172, 193))


@dataclass
class Panel:
    title: str
    bars: list[tuple[str, float, str]]  # (label, value, text shown after the bar)
    max_value: float | None = None  # the full bar width; default the largest value
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical lines, e.g. a target


class Canvas:
    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.px = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
        x0, x1 = max(0, x), min(self.w, x + w)
        if x1 <= x0:
            return
        row = bytes(rgb) * (x1 - x0)
        for yy in range(max(0, y), min(self.h, y + h)):
            i = (yy * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def text(self, x: int, y: int, s: str, rgb: tuple[int, int, int] = (0, 0, 0)) -> None:
        for ch in s:
            glyph = _FONT.get(ch.upper(), _FONT["?"])
            for r, bits in enumerate(glyph):
                for c in range(5):
                    if bits & (16 >> c):
                        self.rect(x + c * SCALE, y + r * SCALE, SCALE, SCALE, rgb)
            x += CHAR_W

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def write_png(path: Path, panels: list[Panel], width: int = 1100) -> Path:
    label_w = max((len(b[0]) for p in panels for b in p.bars), default=10) * CHAR_W + 20
    bar_h, gap = CHAR_H + 6, 6
    height = 20 + sum(CHAR_H + 14 + len(p.bars) * (bar_h + gap) + 24 + (CHAR_H + 4) * bool(p.marks) for p in panels)
    cv = Canvas(width, height)
    y = 12
    for p in panels:
        cv.text(12, y, p.title)
        y += CHAR_H + 14
        full = p.max_value or max((b[1] for b in p.bars), default=1) or 1
        area = width - label_w - 22 * CHAR_W - 20  # room for the value text after the longest bar
        top = y
        for i, (label, value, shown) in enumerate(p.bars):
            cv.text(12, y + 3, label)
            w = int(area * max(0.0, min(value, full)) / full)
            cv.rect(label_w, y, max(w, 1), bar_h, COLORS[i % len(COLORS)])
            cv.text(label_w + w + 8, y + 3, shown)
            y += bar_h + gap
        for value, name in p.marks:  # a vertical line through the bars, its name under them
            x = label_w + int(area * min(value, full) / full)
            cv.rect(x, top - 4, 2, y - top + 8, (0, 0, 0))
            cv.text(x + 4, y + 2, name, (90, 90, 90))
        y += 24 + (CHAR_H + 4) * bool(p.marks)
    path.write_bytes(cv.png())
    return path
