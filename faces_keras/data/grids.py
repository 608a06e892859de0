"""Cutting faces out of grid photos, the original project's source format.

A grid photo holds faces of one cell size in ``cols`` columns and ``rows``
rows. Faces are numbered from 1, row by row, photo after photo in file-name
order. The layout is read from the file name
``faces<i>-<cols>x<rows>-<width>x<height>.png`` or given explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faces_keras.data.images import read_image
from faces_keras.errors import ImageError

GRID_NAME = re.compile(r"^faces(?P<index>\d+)-(?P<cols>\d+)x(?P<rows>\d+)-(?P<width>\d+)x(?P<height>\d+)\.(png|jpg|jpeg|bmp)$",
                       re.IGNORECASE)


@dataclass(frozen=True)
class GridLayout:
    """The layout of a grid photo: ``cols`` x ``rows`` square cells of ``cell`` pixels.

    Args:
        cols: cells per row.
        rows: rows of cells.
        cell: the side of one square cell (one face), in pixels.
    """

    cols: int
    rows: int
    cell: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the photo must have."""
        return self.cols * self.cell, self.rows * self.cell


@dataclass(frozen=True)
class GridFace:
    """Where one face of a grid photo came from.

    Args:
        number: the face's number, 1-based, across all photos (the number
            the labels file uses).
        photo: the grid photo's path.
        row: the cell's row in the photo, 0-based.
        col: the cell's column in the photo, 0-based.
    """

    number: int  # 1-based, across all photos
    photo: str
    row: int  # 0-based
    col: int


def layout_from_name(path: Path) -> GridLayout:
    """The layout a grid photo's file name declares.

    Args:
        path: a grid photo named ``faces<i>-<cols>x<rows>-<width>x<height>.png``
            (or .jpg/.jpeg/.bmp); only the name is read.

    Returns:
        The :class:`GridLayout` whose cell is ``width / cols`` pixels.

    Raises:
        ImageError: the name does not follow that pattern, or its size is not
            ``cols`` x ``rows`` square cells.
    """
    match = GRID_NAME.match(path.name)
    if not match:
        raise ImageError(f"{path}: the name does not follow faces<i>-<cols>x<rows>-<width>x<height>.png; "
                         "give the layout with --cols/--rows/--cell")
    cols, rows = int(match["cols"]), int(match["rows"])
    width, height = int(match["width"]), int(match["height"])
    if width % cols or height % rows or width // cols != height // rows:
        raise ImageError(f"{path}: {width}x{height} is not {cols}x{rows} square cells")
    return GridLayout(cols, rows, width // cols)


def list_grid_photos(folder: Path) -> list[Path]:
    """Grid photos in a folder, in the order their faces are numbered.

    File-name order, with the photo index compared as a number so that
    ``faces10`` follows ``faces9``; files whose names do not follow the grid
    pattern come after, by name.

    Args:
        folder: the folder of grid photos (png/jpg/jpeg/bmp files).

    Returns:
        The photos' paths, in numbering order.

    Raises:
        ImageError: the folder is missing, holds no photos, or its numbered
            photos skip or repeat a number (every later face would get another
            face's labels).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: grid photos folder not found; expected a folder of grid photos "
                         "faces<i>-<cols>x<rows>-<width>x<height>.png (--photos)")
    photos = [p for p in folder.iterdir()
              if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")]

    def key(p: Path):
        match = GRID_NAME.match(p.name)
        return (0, int(match["index"]), p.name) if match else (1, 0, p.name)

    photos.sort(key=key)
    if not photos:
        raise ImageError(f"{folder}: no grid photos (png/jpg) found")
    _check_numbering(folder, photos)
    return photos


def _check_numbering(folder: Path, photos: list[Path]) -> None:
    """Numbered grid photos must run 1, 2, 3, ... without gaps or repeats.

    Face numbers follow from the photos' order (photo after photo), so a missing
    photo would silently give every later face another face's labels.
    """
    by_index: dict[int, list[str]] = {}
    for photo in photos:
        match = GRID_NAME.match(photo.name)
        if match:
            by_index.setdefault(int(match["index"]), []).append(photo.name)
    if not by_index:
        return
    repeated = {i: names for i, names in by_index.items() if len(names) > 1}
    if repeated:
        i, names = min(repeated.items())
        raise ImageError(f"{folder}: grid photo number {i} appears {len(names)} times ({', '.join(names)}); "
                         "expected each number once")
    missing = [i for i in range(1, max(by_index) + 1) if i not in by_index]
    if missing:
        shown = ", ".join(f"faces{i}-*" for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ImageError(
            f"{folder}: grid photo number(s) {missing[:10]} missing ({shown}); faces are numbered photo "
            f"after photo, so expected photos numbered 1 to {max(by_index)} without gaps")


def cut_grid(path: Path, layout: GridLayout | None = None, *, gray: bool = False,
             first_number: int = 1) -> tuple[np.ndarray, list[GridFace]]:
    """All cells of one grid photo as ``(n, cell, cell, C)`` uint8, with their numbers.

    Args:
        path: the grid photo.
        layout: its layout; ``None`` (the default) reads it from the file name.
        gray: read the photo as gray (``C = 1``) instead of RGB (``C = 3``).
        first_number: the number of the photo's first face.

    Returns:
        A pair: the faces, row by row, and one :class:`GridFace` per face.

    Raises:
        ImageError: the photo cannot be read, its size does not match the
            layout, or (``layout`` not given) its name declares none.
    """
    path = Path(path)
    layout = layout or layout_from_name(path)
    image = read_image(path, gray=gray)
    height, width = image.shape[:2]
    if (width, height) != layout.size:
        raise ImageError(
            f"{path}: the photo is {width}x{height} but a {layout.cols}x{layout.rows} grid of "
            f"{layout.cell}px cells needs {layout.size[0]}x{layout.size[1]}"
        )
    c = layout.cell
    cells = image.reshape(layout.rows, c, layout.cols, c, image.shape[-1]).swapaxes(1, 2)
    faces = np.ascontiguousarray(cells.reshape(layout.rows * layout.cols, c, c, image.shape[-1]))
    origins = [GridFace(first_number + r * layout.cols + k, str(path), r, k)
               for r in range(layout.rows) for k in range(layout.cols)]
    return faces, origins


def cut_grids(folder: Path, layout: GridLayout | None = None, *, gray: bool = False
              ) -> tuple[np.ndarray, list[GridFace]]:
    """Every face of every grid photo in ``folder``, numbered from 1.

    Args:
        folder: the folder of grid photos; photos are read in the order of
            :func:`list_grid_photos`.
        layout: the layout of every photo; ``None`` (the default) reads each
            photo's layout from its file name.
        gray: read the photos as gray (``C = 1``) instead of RGB (``C = 3``).

    Returns:
        A pair: the faces, uint8 ``(N, cell, cell, C)``, and one
        :class:`GridFace` per face, numbered photo after photo.

    Raises:
        ImageError: the folder is missing or empty, the photos' numbering has
            gaps, or a photo cannot be read or does not fit its layout.
    """
    all_faces, all_origins = [], []
    for photo in list_grid_photos(folder):
        faces, origins = cut_grid(photo, layout, gray=gray, first_number=len(all_origins) + 1)
        all_faces.append(faces)
        all_origins.extend(origins)
    return np.concatenate(all_faces), all_origins
