"""``faces-keras embed RUN [DATA]``: the latent space of a run's model.

A face's embedding is the output of the layer that feeds the model's heads
(the penultimate layer: global average pooling, then dropout, of the residual
and sequential presets; the Dense layer of the original ones), found from the
heads themselves so it holds for every preset. DATA is what ``evaluate``
takes (a prepared dataset, or labelled photos); without it, the run's own
test split. Written to ``<run>/embeddings/<data name>`` (built under a
temporary name and renamed, under the folder's one-writer lock)::

    embeddings.npz    ids, vectors (N x width), labels (N x L, NaN missing), label_names
    projections.csv   each face's 2-D PCA and t-SNE coordinates (scikit-learn, seeded)
    pca.png, tsne.png one panel per label, faces coloured by their true value
    neighbours.csv    each face's k nearest faces by cosine similarity
    hard_pairs.csv    per label, the most alike pairs of faces whose true values differ
    embed.html        the projections as an interactive panel (hover: id, labels, face)
                      and the hard pairs with their faces; self-contained, no network

Colours and hard pairs use the set's own labels (every label it has).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faces_keras.errors import DatasetError, RunError
from faces_keras.inference.evaluate import LabelledSet, load_labelled_set
from faces_keras.io import atomic_dir, atomic_write_text
from faces_keras.labels.schema import Schema
from faces_keras.locking import folder_lock
from faces_keras.rundir import MODEL, SCHEMA, RunDir
from faces_keras.settings import setting, validate

log = logging.getLogger(__name__)

PROJECTIONS = ("pca", "tsne")
SPLIT_CHOICES = ("train", "val", "test")


@dataclass
class EmbedConfig:
    """Settings of ``faces-keras embed``.

    Attributes:
        out: the output folder; default ``<run>/embeddings/<data name>`` (``-<split>``
            added when ``split`` picks splits; the run's own: ``<run>/embeddings/test``).
        labels: with photos: the labels file, DATA being the photos' folder.
        schema: with photos: the labels' schema; default the run's own.
        split: splits of a prepared dataset to embed; empty: all of a given
            dataset, the test split of the run's own.
        batch_size: faces per ``predict`` batch.
        neighbours: nearest neighbours listed per face.
        hard_pairs: hard pairs listed per label.
        projections: the 2-D projections to make.
        perplexity: t-SNE's perplexity, clipped to (faces - 1) / 3 for small sets.
        seed: the projections' random seed.
        thumbnails: faces shown on hover in embed.html at most (a sample beyond).
    """

    out: str | None = setting(None, help="output folder (default: <run>/embeddings/<data name>)", metavar="DIR")
    labels: str | None = setting(None, help="labels file of the photos in DATA (DATA is then the photos' folder)",
                                 metavar="FILE")
    schema: str | None = setting(None, help="schema of the labels (default: the run's own)", metavar="S")
    split: tuple[str, ...] = setting(default_factory=tuple, help="split(s) of a prepared dataset to embed "
                                     "(default: all; the run's own dataset: test)", each_choices=SPLIT_CHOICES,
                                     metavar="SPLIT[,SPLIT]")
    batch_size: int = setting(256, help="faces per predict batch", at_least=1)
    neighbours: int = setting(5, help="nearest neighbours per face (neighbours.csv)", at_least=1)
    hard_pairs: int = setting(12, help="hard pairs per label: the most alike faces across a label boundary",
                              at_least=1)
    projections: tuple[str, ...] = setting(PROJECTIONS, help="2-D projections to make", each_choices=PROJECTIONS)
    perplexity: float = setting(30.0, help="t-SNE perplexity (clipped to (faces - 1) / 3)", above=0)
    seed: int = setting(0, help="random seed of the projections")
    thumbnails: int = setting(3000, help="faces whose picture embed.html shows on hover, at most", at_least=0)

    def __post_init__(self):
        validate(self)
        if not self.projections:
            from faces_keras.errors import ConfigError

            raise ConfigError("projections=() (--projections): expected at least one of pca, tsne")


# -- the embedding layer -----------------------------------------------------------------


def head_layer_names(model) -> list[str]:
    """The names of the model's output layers (a Sequential model: its last layer)."""
    names = list(getattr(model, "output_names", None) or [])
    return names or [model.layers[-1].name]


def feature_tensor(model):
    """The tensor every head of ``model`` reads: the penultimate layer's output.

    A regression head is a ``<name>_standardised`` Dense layer and a rescaling
    named after the head; its input is the Dense layer's. Every preset of the
    suite feeds all heads from one tensor.

    Raises:
        RunError: the heads read different tensors (not a model the suite built).
    """
    layer_names = {layer.name for layer in model.layers}
    tensors = []
    for name in head_layer_names(model):
        first = f"{name}_standardised" if f"{name}_standardised" in layer_names else name
        tensors.append(model.get_layer(first).input)
    if any(t is not tensors[0] for t in tensors[1:]):
        raise RunError(f"model {model.name!r}: its heads read different layers, so it has no one embedding; "
                       "expected a model built by faces-keras train")
    return tensors[0]


def embedding_model(model):
    """A Keras model from the run model's input to its penultimate layer's output."""
    import keras

    return keras.Model(model.inputs, feature_tensor(model), name=f"{model.name}_embedding")


def embed_faces(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Embeddings ``(N, width)`` of uint8 faces with a run's model (behind a progress bar)."""
    from tqdm.auto import tqdm

    encoder = embedding_model(model)
    chunk = 1024
    parts = [encoder.predict(images[s:s + chunk].astype("float32"), batch_size=batch_size, verbose=0)
             for s in tqdm(range(0, len(images), chunk), desc="embed", unit="chunk", leave=False,
                           disable=True if len(images) <= chunk else None)]
    vectors = np.concatenate(parts).astype("float32")
    return vectors.reshape(len(images), -1)


# -- geometry --------------------------------------------------------------------------


def clipped_perplexity(perplexity: float, n: int) -> float:
    """t-SNE's perplexity for ``n`` faces: at most (n - 1) / 3 (scikit-learn needs it below n)."""
    return float(max(1.0, min(perplexity, (n - 1) / 3)))


def project(vectors: np.ndarray, method: str, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D projection ``(N, 2)`` of the embeddings: ``"pca"`` or ``"tsne"`` (scikit-learn, seeded)."""
    n = len(vectors)
    if n < 3:
        raise DatasetError(f"{n} face(s): a 2-D projection needs at least 3")
    if method == "pca":
        from sklearn.decomposition import PCA

        width = min(2, vectors.shape[1])
        out = PCA(n_components=width, random_state=seed).fit_transform(vectors)
        return np.pad(out, ((0, 0), (0, 2 - width))).astype("float32")
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=clipped_perplexity(perplexity, n), init="pca",
                    learning_rate="auto", random_state=seed)
        return tsne.fit_transform(vectors).astype("float32")
    raise ValueError(f"projection {method!r}: expected one of {PROJECTIONS}")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest_neighbours(vectors: np.ndarray, ids: list[str] | np.ndarray, k: int = 5) -> pd.DataFrame:
    """Each face's ``k`` nearest other faces by cosine similarity (scikit-learn ``NearestNeighbors``).

    Args:
        vectors: embeddings ``(N, width)``.
        ids: the faces' ids, in the same order.
        k: neighbours per face (at most N - 1).

    Returns:
        One row per face and rank: ``id``, ``rank`` (1 nearest), ``neighbour``
        (its id), ``similarity`` (cosine, 1 alike).
    """
    from sklearn.neighbors import NearestNeighbors

    ids = np.asarray(ids).astype(str)
    n = len(vectors)
    k = min(k, n - 1)
    if k < 1:
        return pd.DataFrame(columns=["id", "rank", "neighbour", "similarity"])
    finder = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors)
    distances, indices = finder.kneighbors(vectors)
    rows = []
    for i in range(n):
        # The face itself is normally first; an exact duplicate may come before it.
        order = [(j, d) for j, d in zip(indices[i], distances[i]) if j != i][:k]
        for rank, (j, d) in enumerate(order, 1):
            rows.append((ids[i], rank, ids[j], float(1.0 - d)))
    return pd.DataFrame(rows, columns=["id", "rank", "neighbour", "similarity"])


def hard_pairs(vectors: np.ndarray, values: np.ndarray, k: int = 12, chunk: int = 1024) -> list[tuple[int, int, float]]:
    """The ``k`` most alike pairs of faces whose true values of one label differ.

    Args:
        vectors: embeddings ``(N, width)``.
        values: the label's encoded values ``(N,)``; negative or NaN is missing
            (such faces are in no pair).
        k: pairs to return.
        chunk: rows compared at once (memory is chunk x N).

    Returns:
        ``(i, j, cosine similarity)`` with ``i < j``, most alike first.
    """
    values = np.asarray(values, dtype=float)
    known = np.isfinite(values) & (values >= 0)
    unit = _unit(np.asarray(vectors, dtype="float64"))
    n = len(unit)
    best: list[tuple[float, int, int]] = []
    columns = np.arange(n)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        sims = unit[rows] @ unit.T
        allowed = (values[rows, None] != values[None, :]) & known[rows, None] & known[None, :] \
            & (columns[None, :] > rows[:, None])
        sims = np.where(allowed, sims, -np.inf)
        flat = sims.ravel()
        take = min(k, int(np.isfinite(flat).sum()))
        if take == 0:
            continue
        top = np.argpartition(-flat, take - 1)[:take]
        best += [(float(flat[t]), int(rows[t // n]), int(t % n)) for t in top]
        best = sorted(best, key=lambda item: (-item[0], item[1], item[2]))[:k]
    return [(i, j, s) for s, i, j in best]


# -- the result ---------------------------------------------------------------------


@dataclass
class EmbeddingResult:
    """What :func:`embed_run` computed and wrote.

    Attributes:
        out_dir: the output folder.
        ids: the faces' ids.
        vectors: the embeddings ``(N, width)``.
        projections: method -> ``(N, 2)`` coordinates.
        neighbours: the nearest-neighbour table (neighbours.csv).
        hard_pairs: the hard-pair table (hard_pairs.csv).
        files: name -> path of every file written.
    """

    out_dir: Path
    ids: np.ndarray
    vectors: np.ndarray
    projections: dict[str, np.ndarray]
    neighbours: pd.DataFrame
    hard_pairs: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """Where the embeddings went, for the command line."""
        lines = [f"{len(self.ids)} faces embedded in {self.vectors.shape[1]} dimensions -> {self.out_dir}"]
        for name in ("embeddings.npz", "neighbours.csv", "hard_pairs.csv", *(f"{p}.png" for p in self.projections),
                     "embed.html"):
            if name in self.files:
                lines.append(f"  {name}: {self.files[name]}")
        return "\n".join(lines)


# -- embedding a set -----------------------------------------------------------------


def _run_dataset(run: RunDir) -> Path:
    config = run.read_config() or {}
    path = config.get("dataset") or run.manifest().get("path")
    if not path or not Path(path).is_dir():
        raise RunError(f"{run.path}: the run's dataset {path!r} is not there any more; give DATA "
                       "(a prepared dataset, or photos and labels) to embed")
    return Path(path)


def embed_run(run: RunDir | str | Path, data: str | Path | None = None,
              config: EmbedConfig | None = None) -> EmbeddingResult:
    """Embed a set's faces with a run's model; project, find neighbours and hard pairs, and write it all.

    Args:
        run: the run directory.
        data: what ``evaluate`` takes (a prepared dataset, a labels source, or
            with ``config.labels`` the photos' folder); None: the run's own
            dataset, its test split unless ``config.split`` says otherwise.
        config: the settings.

    Returns:
        An :class:`EmbeddingResult`.

    Raises:
        RunError: the run is incomplete, or (no DATA) its dataset is gone.
        DatasetError: DATA is not found, has fewer than 3 faces, or does not fit the model.
        FolderLockedError: another process is writing the output folder.
    """
    config = config or EmbedConfig()
    run = RunDir(run) if not isinstance(run, RunDir) else run
    run.require(MODEL, SCHEMA)
    if data is None:
        source = _run_dataset(run)
        splits = config.split or ("test",)
        name = "-".join(splits)
    else:
        source, splits, name = Path(data), config.split, None
    labelled = load_labelled_set(source, run, labels=config.labels, schema=config.schema, splits=splits)
    if name is None:
        name = labelled.name + ("-" + "-".join(config.split) if config.split else "")
    out_dir = Path(config.out) if config.out else run.path / "embeddings" / name
    if len(labelled.images) < 3:
        raise DatasetError(f"{source}: {len(labelled.images)} face(s); embedding needs at least 3")

    from faces_keras.inference.evaluate import check_input_shape
    from faces_keras.models.saving import load_run_model

    model = load_run_model(run, compile=False)
    check_input_shape(model, labelled.images, str(source))
    vectors = embed_faces(model, labelled.images, config.batch_size)
    ids = labelled.faces["id"].to_numpy().astype(str)
    projections = {method: project(vectors, method, seed=config.seed, perplexity=config.perplexity)
                   for method in config.projections}
    neighbours = nearest_neighbours(vectors, ids, config.neighbours)
    label_table = _label_table(labelled)
    pairs = _hard_pair_table(vectors, ids, labelled, config.hard_pairs)
    title = f"{run.path.name}: latent space of {source.name}" + (f" ({', '.join(splits)})" if splits else "")
    with folder_lock(out_dir, "embedding folder"):
        with atomic_dir(out_dir, overwrite=True) as tmp:
            with open(tmp / "embeddings.npz", "wb") as handle:
                np.savez_compressed(handle, ids=ids, vectors=vectors, labels=label_table.to_numpy("float32"),
                                    label_names=np.asarray(list(label_table.columns), dtype=str),
                                    split=labelled.faces["split"].to_numpy().astype(str))
            coords = pd.DataFrame({"id": ids, "split": labelled.faces["split"].to_numpy()})
            for method, xy in projections.items():
                coords[f"{method}_x"], coords[f"{method}_y"] = xy[:, 0], xy[:, 1]
            atomic_write_text(tmp / "projections.csv", coords.to_csv(index=False))
            atomic_write_text(tmp / "neighbours.csv", neighbours.to_csv(index=False))
            atomic_write_text(tmp / "hard_pairs.csv", pairs.to_csv(index=False))
            for method, xy in projections.items():
                plot_projection(xy, labelled.schema, label_table, tmp / f"{method}.png",
                                title=f"{method.upper()} of {len(ids)} faces")
            atomic_write_text(tmp / "embed.html",
                              render_embed_html(title, ids, projections, labelled, label_table, pairs,
                                                thumbnails=config.thumbnails, seed=config.seed,
                                                width=vectors.shape[1]))
        files = {p.name: out_dir / p.name for p in sorted(out_dir.iterdir())}
    log.info("embedded %d faces of %s with %s -> %s", len(ids), source, run.path, out_dir)
    return EmbeddingResult(out_dir, ids, vectors, projections, neighbours, pairs, files)


def _label_table(labelled: LabelledSet) -> pd.DataFrame:
    """The set's labels as floats, NaN where missing."""
    out = pd.DataFrame(index=range(len(labelled.faces)))
    for label in labelled.schema.labels:
        values = labelled.faces[label.name].to_numpy(dtype=float)
        if label.kind != "regression":
            values = np.where(values < 0, np.nan, values)
        out[label.name] = values
    return out


def _value_name(schema: Schema, label: str, value: float) -> str:
    if not np.isfinite(value):
        return "?"
    spec = schema[label]
    if spec.kind == "regression":
        return f"{value:g}"
    return spec.value_names()[int(value)]


def _hard_pair_table(vectors: np.ndarray, ids: np.ndarray, labelled: LabelledSet, k: int) -> pd.DataFrame:
    rows = []
    for label in labelled.schema.labels:
        if label.kind == "regression":
            continue  # a number has no boundary to cross
        values = labelled.faces[label.name].to_numpy(dtype=float)
        for rank, (i, j, sim) in enumerate(hard_pairs(vectors, values, k), 1):
            rows.append({"label": label.name, "rank": rank, "id_a": ids[i], "value_a": label.value_names()[int(values[i])],
                         "id_b": ids[j], "value_b": label.value_names()[int(values[j])], "similarity": sim,
                         "index_a": i, "index_b": j})
    return pd.DataFrame(rows, columns=["label", "rank", "id_a", "value_a", "id_b", "value_b", "similarity",
                                       "index_a", "index_b"])


# -- pictures ---------------------------------------------------------------------


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")
MISSING_COLOUR = "#cccccc"


def plot_projection(xy: np.ndarray, schema: Schema, labels: pd.DataFrame, path: str | Path,
                    title: str = "") -> Path:
    """One panel per label: the faces' 2-D coordinates coloured by their true value (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(labels.columns) or ["faces"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    size = max(4, min(30, 3000 / max(1, len(xy))))
    for ax, name in zip(axes.ravel(), names):
        ax.set_xticks([]), ax.set_yticks([])
        if name not in labels:
            ax.scatter(xy[:, 0], xy[:, 1], s=size, c=PALETTE[0])
            continue
        values = labels[name].to_numpy()
        known = np.isfinite(values)
        label = schema[name]
        ax.set_title(name)
        if (~known).any():
            ax.scatter(xy[~known, 0], xy[~known, 1], s=size, c=MISSING_COLOUR, label="missing")
        if label.kind == "regression":
            points = ax.scatter(xy[known, 0], xy[known, 1], s=size, c=values[known], cmap="viridis")
            fig.colorbar(points, ax=ax, shrink=0.8)
        else:
            for k, value_name in enumerate(label.value_names()):
                mask = known & (values == k)
                if mask.any():
                    ax.scatter(xy[mask, 0], xy[mask, 1], s=size, c=PALETTE[k % len(PALETTE)], label=value_name,
                               alpha=0.8)
            ax.legend(fontsize=7, markerscale=1.5, loc="best")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def thumbnail_uri(image: np.ndarray) -> str:
    """A face as a PNG ``data:`` URI (gray or RGB uint8)."""
    import cv2

    face = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image[..., ::-1]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(face))
    if not ok:
        raise ValueError("could not encode a face as PNG")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


_SCRIPT = """
const D = JSON.parse(document.getElementById('embed-data').textContent);
const W = 560, H = 560, PAD = 14, NS = 'http://www.w3.org/2000/svg';
const tip = document.getElementById('tip');
function colourOf(label, i) {
  if (!label) return PALETTE[0];
  const L = D.labels[label], v = L.values[i];
  if (v === null) return MISSING;
  if (L.kind === 'regression') {
    const t = (v - L.min) / ((L.max - L.min) || 1);
    return `hsl(${Math.round(260 - 200 * t)}, 70%, 45%)`;
  }
  return PALETTE[v % PALETTE.length];
}
function draw(panel) {
  const method = panel.dataset.method, label = panel.querySelector('select').value;
  const svg = panel.querySelector('svg'), xy = D.projections[method];
  const xs = xy.map(p => p[0]), ys = xy.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  xy.forEach((p, i) => {
    const c = document.createElementNS(NS, 'circle');
    c.setAttribute('cx', PAD + (p[0] - x0) / ((x1 - x0) || 1) * (W - 2 * PAD));
    c.setAttribute('cy', H - PAD - (p[1] - y0) / ((y1 - y0) || 1) * (H - 2 * PAD));
    c.setAttribute('r', D.ids.length > 2000 ? 2.5 : 4);
    c.setAttribute('fill', colourOf(label, i));
    c.dataset.i = i;
    svg.appendChild(c);
  });
  const legend = panel.querySelector('.legend');
  legend.innerHTML = '';
  if (label && D.labels[label].kind !== 'regression') {
    D.labels[label].names.forEach((n, k) => {
      const s = document.createElement('span');
      s.innerHTML = `<i style="background:${PALETTE[k % PALETTE.length]}"></i>${n}`;
      legend.appendChild(s);
    });
  }
}
function show(ev) {
  const i = ev.target.dataset && ev.target.dataset.i;
  if (i === undefined) { tip.style.display = 'none'; return; }
  const parts = Object.keys(D.labels).map(n => `${n}: ${D.labels[n].shown[i]}`);
  const thumb = D.thumbs[i] ? `<img src="${D.thumbs[i]}">` : '';
  tip.innerHTML = `${thumb}<b>${D.ids[i]}</b><br>${parts.join('<br>')}`;
  tip.style.display = 'block';
  tip.style.left = (ev.pageX + 14) + 'px';
  tip.style.top = (ev.pageY + 14) + 'px';
}
document.querySelectorAll('.panel').forEach(panel => {
  panel.querySelector('select').addEventListener('change', () => draw(panel));
  panel.querySelector('svg').addEventListener('mousemove', show);
  panel.querySelector('svg').addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  draw(panel);
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.panels { display: flex; flex-wrap: wrap; gap: 1.5em; }
.panel svg { width: 560px; height: 560px; border: 1px solid #ddd; background: #fff; }
.legend span { margin-right: 1em; font-size: 0.9em; }
.legend i { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; border-radius: 50%; }
#tip { position: absolute; display: none; background: #fff; border: 1px solid #999; padding: 6px;
       font-size: 0.85em; pointer-events: none; box-shadow: 2px 2px 6px rgba(0,0,0,0.2); }
#tip img { display: block; width: 96px; height: 96px; image-rendering: pixelated; margin-bottom: 4px; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: center; }
td img { width: 64px; height: 64px; image-rendering: pixelated; }
"""


def render_embed_html(title: str, ids: np.ndarray, projections: dict[str, np.ndarray], labelled: LabelledSet,
                      labels: pd.DataFrame, pairs: pd.DataFrame, *, thumbnails: int = 3000, seed: int = 0,
                      width: int | None = None) -> str:
    """embed.html: a scatter per projection (recoloured by any label; hover: id, labels, face) and the hard pairs.

    Self-contained: the data, the faces (PNG data URIs) and the script are inline; nothing is fetched.
    """
    n = len(ids)
    shown = np.arange(n) if n <= thumbnails else np.sort(np.random.default_rng(seed).choice(n, thumbnails, False))
    thumbs: list[str | None] = [None] * n
    for i in shown:
        thumbs[int(i)] = thumbnail_uri(labelled.images[i])
    label_data: dict[str, Any] = {}
    for name in labels.columns:
        spec = labelled.schema[name]
        values = labels[name].to_numpy()
        entry: dict[str, Any] = {"kind": spec.kind, "names": spec.value_names(),
                                 "shown": [_value_name(labelled.schema, name, v) for v in values]}
        if spec.kind == "regression":
            entry["values"] = [float(v) if np.isfinite(v) else None for v in values]
            known = values[np.isfinite(values)]
            entry["min"], entry["max"] = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
        else:
            entry["values"] = [int(v) if np.isfinite(v) else None for v in values]
        label_data[name] = entry
    data = {"ids": [str(i) for i in ids], "thumbs": thumbs, "labels": label_data,
            "projections": {m: np.round(xy, 4).tolist() for m, xy in projections.items()}}
    payload = json.dumps(data).replace("</", "<\\/")
    options = "".join(f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in labels.columns)
    panels = "".join(
        f'<div class="panel" data-method="{m}"><h3>{m.upper()}</h3>'
        f'<label>colour by <select>{options}</select></label>'
        f'<div class="legend"></div><svg viewBox="0 0 560 560"></svg></div>' for m in projections)
    facts = f"{n} faces" + (f", embeddings of {width} dimensions" if width else "")
    if n > len(shown):
        facts += f"; pictures on hover for a sample of {len(shown)}"
    pair_html = _pairs_html(pairs, labelled)
    script = f"const PALETTE = {json.dumps(list(PALETTE))}, MISSING = {json.dumps(MISSING_COLOUR)};\n" + _SCRIPT
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(facts)}. "
            "Each point is a face, placed by a 2-D projection of the layer that feeds the model's heads; "
            "faces close together look alike to the model. Hover for the face.</p>"
            f"<div class='panels'>{panels}</div><div id='tip'></div>"
            f"<h2>Hard pairs</h2><p>Per label, the faces the model finds most alike (cosine similarity of "
            f"their embeddings) although their true values differ.</p>{pair_html}"
            f"<script type='application/json' id='embed-data'>{payload}</script>"
            f"<script>{script}</script></body></html>\n")


def _pairs_html(pairs: pd.DataFrame, labelled: LabelledSet) -> str:
    if pairs.empty:
        return "<p>No label with two values among these faces.</p>"
    out = []
    for label, part in pairs.groupby("label", sort=False):
        rows = "".join(
            f"<tr><td>{r.rank}</td><td><img src='{thumbnail_uri(labelled.images[r.index_a])}'><br>"
            f"{html.escape(str(r.id_a))}: {html.escape(str(r.value_a))}</td>"
            f"<td><img src='{thumbnail_uri(labelled.images[r.index_b])}'><br>"
            f"{html.escape(str(r.id_b))}: {html.escape(str(r.value_b))}</td><td>{r.similarity:.3f}</td></tr>"
            for r in part.itertuples())
        out.append(f"<h3>{html.escape(str(label))}</h3><table><tr><th>#</th><th>face</th><th>face</th>"
                   f"<th>similarity</th></tr>{rows}</table>")
    return "".join(out)


__all__ = ["EmbedConfig", "EmbeddingResult", "embed_faces", "embed_run", "embedding_model", "feature_tensor",
           "hard_pairs", "nearest_neighbours", "plot_projection", "project", "render_embed_html"]
