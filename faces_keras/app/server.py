"""The web app: pages for labelling, trying a model and looking at runs, and the JSON API beside them.

Built on FastAPI (Starlette) and served by uvicorn; the pages are hand-written
HTML with the package's own JavaScript and CSS (``faces_keras/app/static``), so
nothing is fetched from the network at run time.

JSON API (what other programs use):

* ``GET /api/labels`` the schema's labels and keys, progress, the face ids (``?unlabelled=1``,
  ``?label=sex&value=F`` filter them), what was opened (``kind``: grids, crops or dataset) and, for a
  prepared dataset, the ``schema_file`` written beside the labels;
* ``GET /api/labels/faces/{id}``, ``GET /api/labels/faces/{id}/image.png``;
* ``PUT /api/labels/faces/{id}`` ``{"values": {label: code}, "drop": bool, "version": n}``: saved at once;
  409 with the face's current values when ``version`` is stale (another tab changed it);
* ``GET /api/runs``, ``GET /api/runs/{run}``;
* ``POST /predict`` (also ``/api/predict``), multipart ``file`` (or several ``files``) and ``run``:
  faces, boxes, labels and scores per photo; ``format=csv`` gives predictions as CSV;
* ``PUT /api/runs/{run}/thresholds`` ``{"thresholds": {label: t}}``: the old file is kept.

Bad input gets a 4xx with ``{"detail": "<one line>"}``: not an image (415), too
large (413), an unknown run or face (404), a bad value (422), a stale write
(409), a path outside a run (403).
"""

from __future__ import annotations

import csv
import io
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Body, File, Form, Request, UploadFile

from faces_keras.app.config import AppConfig, exposure, is_loopback
from faces_keras.errors import FacesKerasError

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


def create_app(config: AppConfig, *, store=None):
    """The ASGI app (FastAPI) for ``config``.

    Args:
        config: what to serve.
        store: a :class:`faces_keras.app.store.LabelStore` to use instead of opening
            ``config.faces``/``config.labels`` (tests).

    Returns:
        The FastAPI application; its ``state.store`` is the labelling store (or None).

    Raises:
        FacesKerasError: the faces folder, labels file or schema is wrong, or another
            process has the labels file open.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles

    from faces_keras.app import pages
    from faces_keras.app.runs import ModelCache
    from faces_keras.app.store import LabelStore

    if store is None and config.faces:
        from faces_keras.app.prepared import is_prepared_dataset
        from faces_keras.labels import load_schema

        schema = config.schema or (None if is_prepared_dataset(config.faces) else "grids")
        store = LabelStore(schema and load_schema(schema), config.faces, config.labels_path)

    @asynccontextmanager
    async def lifespan(app):
        yield
        if app.state.store is not None:  # release the labels file's lock when the server shuts down
            app.state.store.close()

    app = FastAPI(title="faces-keras", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.config = config
    app.state.store = store
    app.state.models = ModelCache(config.detector)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(FacesKerasError)
    async def _user_error(request: Request, exc: FacesKerasError):
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)

    _label_routes(app)
    _run_routes(app)
    pages.add_routes(app)
    return app


def status_for(exc: Exception) -> int:
    """The HTTP status of a user error.

    Args:
        exc: the error.

    Returns:
        404, 409, 413, 415, 422, 403, or 400 for any other user error.
    """
    from faces_keras.app.runs import OutsideFolderError, UnknownRunError
    from faces_keras.app.store import BadValueError, StaleFaceError, UnknownFaceError
    from faces_keras.errors import ImageError
    from faces_keras.locking import FolderLockedError

    for kind, status in ((UnknownRunError, 404), (UnknownFaceError, 404), (StaleFaceError, 409),
                         (FolderLockedError, 409), (BadValueError, 422), (ImageError, 415),
                         (OutsideFolderError, 403), (UploadTooLarge, 413), (NoLabellingError, 404)):
        if isinstance(exc, kind):
            return status
    return 400


class UploadTooLarge(FacesKerasError):
    """An upload over the size limit."""


class NoLabellingError(FacesKerasError):
    """The app was started without a faces folder to label."""


def _store(app):
    if app.state.store is None:
        raise NoLabellingError("this app labels nothing: start it with --faces DIR (and --labels FILE)")
    return app.state.store


def _label_routes(app) -> None:
    from fastapi.responses import JSONResponse, Response

    from faces_keras.app.store import StaleFaceError, label_codes

    @app.get("/api/labels")
    def labels_index(unlabelled: bool = False, label: str | None = None, value: str | None = None):
        store = _store(app)
        return {"schema": store.schema.name, "file": str(store.path), "faces_folder": str(store.faces_dir),
                "kind": store.kind, "schema_file": str(store.schema_file) if store.schema_file else None,
                "labels": [{"name": lab.name, "kind": lab.kind, "codes": label_codes(lab),
                            "names": lab.value_names() if lab.kind == "binary" else list(lab.classes)}
                           for lab in store.schema.labels],
                "progress": store.progress(),
                "ids": store.ids(unlabelled=unlabelled, label=label, value=value),
                "resume": next(iter(store.ids(unlabelled=True)), store.faces[-1].id)}

    @app.get("/api/labels/faces/{face_id}")
    def face(face_id: str):
        store = _store(app)
        return store.face(face_id).to_dict(store.schema)

    @app.get("/api/labels/faces/{face_id}/image.png")
    def face_image(face_id: str):
        import cv2

        pixels = _store(app).pixels(face_id)
        image = pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., ::-1]
        ok, png = cv2.imencode(".png", image)
        return Response(png.tobytes(), media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.put("/api/labels/faces/{face_id}")
    def set_face(face_id: str, request: Request, body: Any = Body(...)):
        store = _store(app)
        if not isinstance(body, dict):
            raise _bad("expected a JSON object {\"values\": {label: code}, \"drop\": bool, \"version\": n}")
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise _bad("values: expected an object of label -> code")
        drop = body.get("drop")
        if drop is not None and not isinstance(drop, bool):
            raise _bad("drop: expected true or false")
        version = body.get("version")
        if version is not None and not isinstance(version, int):
            raise _bad("version: expected an integer")
        try:
            face = store.set(face_id, values, drop=drop, version=version)
        except StaleFaceError as exc:
            return JSONResponse({"detail": str(exc), "face": exc.face}, status_code=409)
        return {"face": face.to_dict(store.schema), "progress": store.progress()}


def _bad(message: str):
    from faces_keras.app.store import BadValueError

    return BadValueError(message)


def _run_routes(app) -> None:
    from fastapi.responses import FileResponse, Response

    from faces_keras.app.runs import (confusion_matrices, decode_image, find_runs, inside, run_folder,
                                      run_summary, save_thresholds)

    config: AppConfig = app.state.config
    limit = int(config.max_upload_mb * 1024 * 1024)

    @app.get("/api/runs")
    def runs():
        return {"runs": [run_summary(name, folder) for name, folder in find_runs(config.runs).items()]}

    @app.get("/api/runs/{run:path}/describe")
    def describe(run: str):
        folder = run_folder(config.runs, run)
        return {"run": run, **app.state.models.describe(folder)}

    @app.put("/api/runs/{run:path}/thresholds")
    def thresholds(run: str, body: Any = Body(...)):
        folder = run_folder(config.runs, run)
        if not isinstance(body, dict) or not isinstance(body.get("thresholds"), dict):
            raise _bad("expected a JSON object {\"thresholds\": {label: threshold}}")
        return save_thresholds(folder, body["thresholds"])

    @app.get("/api/runs/{run:path}/confusion")
    def confusion(run: str, split: str = "test"):
        return {"run": run, "split": split, "matrices": confusion_matrices(run_folder(config.runs, run), split)}

    @app.get("/api/runs/{run:path}/summary")
    def summary(run: str):
        return run_summary(run, run_folder(config.runs, run))

    @app.get("/runs/{run}/files/{relative:path}")
    def run_file(run: str, relative: str):
        return FileResponse(_file_or_404(inside, run_folder(config.runs, run), relative))

    async def _predict(request: Request, run: str, uploads: list, output: str):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit * max(1, len(uploads)) + 65536:
            raise UploadTooLarge(f"upload of {int(length)} bytes is over the limit of {config.max_upload_mb:g} MB "
                                 "per photo (--max-upload-mb)")
        if not uploads:
            raise _bad("no photo: send it as the multipart field `file` (or several as `files`)")
        folder = run_folder(config.runs, run)
        photos = []
        for upload in uploads:
            data = await upload.read(limit + 1)
            name = Path(upload.filename or "upload").name
            if len(data) > limit:
                raise UploadTooLarge(f"{name}: over the upload limit of {config.max_upload_mb:g} MB "
                                     "(--max-upload-mb)")
            photos.append((name, decode_image(data, name)))
        from starlette.concurrency import run_in_threadpool

        results = []
        for name, rgb in photos:
            results.append({"photo": name, **await run_in_threadpool(app.state.models.predict, folder, rgb)})
        if output == "csv":
            return Response(predictions_csv(results), media_type="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="predictions.csv"'})
        return {"run": run, **app.state.models.describe(folder), "photos": results}

    for path in ("/predict", "/api/predict"):
        @app.post(path)
        async def predict(request: Request, run: str = Form(...), file: UploadFile | None = File(None),
                          files: list[UploadFile] | None = File(None), format: str = Form("json")):
            if format not in ("json", "csv"):
                raise _bad(f"format: expected json or csv, got {format!r}")
            uploads = ([file] if file is not None else []) + list(files or [])
            return await _predict(request, run, uploads, format)


def _file_or_404(inside_fn, folder: Path, relative: str) -> Path:
    from fastapi import HTTPException

    try:
        return inside_fn(folder, relative)
    except FileNotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


def predictions_csv(results: list[dict[str, Any]]) -> str:
    """Predictions as CSV.

    Args:
        results: per photo, ``{"photo", "faces": [{"box", "labels", "scores"}]}``.

    Returns:
        The CSV text: one row per face (``photo,face,x,y,w,h,<label>,<label>_score...``),
        one row with face 0 for a photo without a face.
    """
    names: list[str] = []
    for photo in results:
        for face in photo["faces"]:
            names.extend(n for n in face["labels"] if n not in names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["photo", "face", "x", "y", "w", "h"] + [c for n in names for c in (n, f"{n}_score")])
    for photo in results:
        if not photo["faces"]:
            writer.writerow([photo["photo"], 0, "", "", "", ""] + [""] * (2 * len(names)))
        for i, face in enumerate(photo["faces"], 1):
            cells = [photo["photo"], i, *face["box"]]
            for n in names:
                cells += [face["labels"].get(n, ""), f"{face['scores'].get(n, 0.0):.4f}"]
            writer.writerow(cells)
    return out.getvalue()


@dataclass
class ServeResult:
    """What :func:`serve` did: the address it served until it was stopped."""

    url: str

    def summary(self) -> str:
        return f"stopped serving {self.url}"


def serve(config: AppConfig, *, host_given: bool = False) -> ServeResult:
    """Serve the app until interrupted.

    Args:
        config: what to serve and where.
        host_given: the host was chosen explicitly (``--host``); binding beyond
            localhost is refused without it.

    Returns:
        A :class:`ServeResult` once the server stops.

    Raises:
        FacesKerasError: a non-localhost host without ``host_given``, or what
            :func:`create_app` raises.
    """
    import uvicorn

    if not is_loopback(config.host):
        if not host_given:
            raise FacesKerasError(f"host {config.host!r} is not localhost; give --host {config.host} explicitly "
                                  "to serve beyond this machine (there is no login)")
        log.warning("%s", exposure(config))
    app = create_app(config)
    url = f"http://{config.host}:{config.port}"
    log.info("faces-keras app on %s (labelling %s; runs from %s)", url, config.labels_path or "nothing",
             ", ".join(config.runs) or "nowhere")
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    finally:
        if app.state.store is not None:
            app.state.store.close()
    return ServeResult(url)


__all__ = ["AppConfig", "ServeResult", "create_app", "predictions_csv", "serve"]
