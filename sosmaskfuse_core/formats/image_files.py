"""Image folders on disk: pairing files by stem across folders, reading them with clear errors.

`read_image` refuses a hostile file before it costs memory, with the same pixel cap as image
messages (`max_input_pixels`): anything but a regular file (a folder, a FIFO, a symbolic link
loop) is refused without opening it for a blocking read; a file larger than an image of the cap
can be (`max_file_bytes`) is refused before it is read; a PNG or JPEG is sized from its header
(`compressed.compressed_size`, the codec's own reader) before it is decoded; any other format is
checked after decoding, and OpenCV's own errors and a MemoryError become an `ImageReadError`
naming the file. Callers report that file and go on with the others.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .compressed import compressed_size, sniff_codec
from .pixels import DEFAULT_MAX_PIXELS, ImageDecodeError, check_size

#: File suffixes (lower case) of the image formats OpenCV decodes.
IMAGE_SUFFIXES = frozenset(
    {
        ".bmp",
        ".dib",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".png",
        ".webp",
        ".avif",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pxm",
        ".pnm",
        ".pfm",
        ".sr",
        ".ras",
        ".tiff",
        ".tif",
        ".exr",
        ".hdr",
        ".pic",
    }
)


#: Bytes per pixel of the widest layout OpenCV decodes (four float32 channels, e.g. EXR): no
#: image file within the pixel cap needs more, however it is stored.
MAX_BYTES_PER_PIXEL = 16
#: Room for headers and metadata (EXIF, ICC profiles, text chunks) on top of the pixels.
HEADER_ROOM = 1 << 20


class ImageReadError(ValueError):
    """A file that cannot be read as an image; the text names the file and the reason."""


def max_file_bytes(max_pixels: int) -> int:
    """The largest file an image of at most `max_pixels` pixels can be, in any format."""
    return max_pixels * MAX_BYTES_PER_PIXEL + HEADER_ROOM


def list_images(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """Entries of a folder named like image files (by suffix, hidden ones skipped) by stem.

    In name order. A stem usually has one file; several (a.png and a.jpg) make it ambiguous,
    which callers report rather than guess. Entries that are not regular files (a FIFO, a
    symbolic link loop or to nothing, a folder) are listed too, so that reading them says
    why they are skipped rather than nothing at all. Raises NotADirectoryError for a missing
    folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    out: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            out.setdefault(path.stem, []).append(path)
    return out


def single(images: dict[str, list[Path]], stem: str, role: str, folder: str | os.PathLike) -> Path:
    """The one `role` file of `stem` in a `list_images` listing; ValueError naming the problem."""
    paths = images.get(stem, [])
    if not paths:
        raise ValueError(f"no {role} image named '{stem}' in {folder}")
    if len(paths) > 1:
        raise ValueError(f"ambiguous {role} image '{stem}': " + ", ".join(p.name for p in paths))
    return paths[0]


@dataclass
class Pairing:
    """Files matched by stem across several folders, and what could not be matched."""

    pairs: list[tuple[str, tuple[Path, ...]]] = field(default_factory=list)
    unmatched: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)


def pair_by_stem(*folders: str | os.PathLike, names: tuple[str, ...] | None = None) -> Pairing:
    """Match files of the same stem in every folder; the others are reported with the reason.

    The reason is the folders they are missing from, or several files of one stem.
    """
    names = names or tuple(Path(f).name for f in folders)
    listings = [list_images(f) for f in folders]
    result = Pairing()
    for stem in sorted(set().union(*listings), key=natural_key):
        found = [listing.get(stem, []) for listing in listings]
        ambiguous = [paths for paths in found if len(paths) > 1]
        if ambiguous:
            for path in ambiguous[0]:
                result.unmatched.append((path, f"several files named '{stem}' in {path.parent}"))
        elif all(found):
            result.pairs.append((stem, tuple(paths[0] for paths in found)))
        else:
            missing = ", ".join(n for n, paths in zip(names, found) if not paths)
            for paths in found:
                if paths:
                    result.unmatched.append((paths[0], f"no partner in {missing}"))
    return result


def natural_key(stem: str) -> tuple:
    """Sort key putting '2' before '10' (digit runs compare as numbers)."""
    return tuple(
        (0, int(t), t) if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", stem) if t
    )


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _file_kind(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def read_file_bytes(path: str | os.PathLike, limit: int | None) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them; ImageReadError otherwise.

    The file is opened without blocking and checked to be a regular file before a byte is
    read, so a FIFO named like an image never hangs the reader.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{path}: a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            what = "a symbolic link to nothing" if os.path.islink(path) else "no such file"
            raise ImageReadError(f"{path}: {what}") from None
        raise ImageReadError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError(f"{path}: {_file_kind(info.st_mode)}, not an image file")
        if info.st_size == 0:
            raise ImageReadError(f"{path}: empty file")
        if limit is not None and info.st_size > limit:
            raise ImageReadError(
                f"{path}: {info.st_size} bytes, more than an image within max_input_pixels can "
                f"take ({limit} bytes); not read"
            )
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        try:
            data = file.read() if limit is None else file.read(limit + 1)
        except OSError as exc:
            raise ImageReadError(f"{path}: cannot read: {exc.strerror}") from None
        except MemoryError:
            raise ImageReadError(f"{path}: not enough memory to read it") from None
    if limit is not None and len(data) > limit:  # it grew since fstat
        raise ImageReadError(f"{path}: more than {limit} bytes; not read")
    return data


def read_image(
    path: str | os.PathLike,
    flags: int = cv2.IMREAD_COLOR,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The image in the file `path`, decoded by OpenCV with `flags` (cv2.imread's).

    ImageReadError names the file and the reason: not a regular file, empty, bigger than
    `max_file_bytes(max_pixels)`, more than `max_pixels` pixels (from the PNG or JPEG header
    before decoding, from the decoded image otherwise), not an image OpenCV can read, or not
    enough memory to decode it. `max_pixels` None: no cap.
    """
    path = os.fspath(path)
    limit = None if max_pixels is None else max_file_bytes(max_pixels)
    data = np.frombuffer(read_file_bytes(path, limit), dtype=np.uint8)
    try:
        if sniff_codec(data) is not None:
            codec, width, height = compressed_size(data, name=path)
            check_size(width, height, max_pixels, path, what=f"the {codec.upper()} header says ")
    except ImageDecodeError as exc:
        raise ImageReadError(str(exc)) from None
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as exc:  # OpenCV's own limits, corrupt streams
        message = str(exc).strip().splitlines()[-1]
        raise ImageReadError(f"{path}: OpenCV could not decode it: {message}") from None
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode it") from None
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not an image OpenCV can read")
    height, width = image.shape[:2]
    if max_pixels is not None and width * height > max_pixels:  # a format without a size check
        raise ImageReadError(
            f"{path}: {width}x{height} = {width * height} pixels, more than "
            f"max_input_pixels = {max_pixels}; dropped"
        )
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image, creating the folder; raises OSError when the encoder or the disk fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image")
    buf.tofile(os.fspath(path))
