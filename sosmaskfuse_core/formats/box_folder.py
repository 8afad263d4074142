"""A folder of box annotations, one file per image stem: YOLO txt or VOC xml, with class names.

YOLO class names come from the folder's ``classes.txt`` or are given (``names``); without
either a box is labelled by its class id. VOC boxes carry their names. The format is given or
found from the files (``auto``: VOC when the folder has .xml files and no .txt labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from sosmaskfuse_core.formats.image_files import natural_key
from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError, read_voc
from sosmaskfuse_core.formats.yolo_boxes import read_class_names, read_yolo

__all__ = ["BOX_FORMATS", "BoxFolder"]

BOX_FORMATS = ("auto", "yolo", "voc")
CLASSES_FILE = "classes.txt"


class BoxFolder:
    """The annotation files of a folder by stem, read into `Box` lists for a given image size."""

    def __init__(
        self, folder: str | Path, box_format: str = "auto", names: Sequence[str] | None = None
    ) -> None:
        """Index ``folder``; NotADirectoryError, or ValueError for an unknown format."""
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"{folder}: not a folder")
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box format {box_format!r}: expected one of {BOX_FORMATS}")
        files: dict[str, dict[str, Path]] = {"yolo": {}, "voc": {}}
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith(".") or not path.is_file() or path.name == CLASSES_FILE:
                continue
            kind = {".txt": "yolo", ".xml": "voc"}.get(path.suffix.lower())
            if kind:
                files[kind][path.stem] = path
        if box_format == "auto":
            box_format = "voc" if files["voc"] and not files["yolo"] else "yolo"
        self.format = box_format
        self.files: dict[str, Path] = files[box_format]
        self.names: list[str] | None = None
        if box_format == "yolo":
            if names is not None:
                self.names = list(names)
            elif (self.folder / CLASSES_FILE).is_file():
                self.names = read_class_names(self.folder / CLASSES_FILE)

    def stems(self) -> list[str]:
        """The stems with an annotation file, in natural order."""
        return sorted(self.files, key=natural_key)

    def read(self, stem: str, width: int, height: int) -> list[Box]:
        """The boxes of ``stem`` on a ``width`` x ``height`` image (VOC boxes are in pixels)."""
        path = self.files.get(stem)
        if path is None:
            raise BoxFileError(f"{self.folder}: no annotation for '{stem}'")
        if self.format == "voc":
            return read_voc(path)
        return read_yolo(path, width, height, self.names)

    def class_filter(self, classes: Iterable[str]) -> set[str]:
        """The labels (lower case) meant by ``classes``: names, or YOLO ids where names are known.

        ValueError naming an id that has no name.
        """
        wanted = set()
        for token in (c.strip() for c in classes):
            if not token:
                continue
            if token.isdigit() and self.names is not None:
                if int(token) >= len(self.names):
                    raise ValueError(
                        f"class id {token}: {self.folder} names only {len(self.names)} classes"
                    )
                token = self.names[int(token)]
            wanted.add(token.lower())
        return wanted
