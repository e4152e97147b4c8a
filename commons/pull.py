"""Pull a published commons by its persistent id: list, download, verify, ingest, record.

The calls follow the Dataverse API guide: the Native API's *Get JSON Representation of
a Dataset* (``/datasets/:persistentId/versions/{version}``) and *List Files in a
Dataset* (``.../versions/{version}/files``) through pyDataverse's ``NativeApi``, and the
Data Access API's *Basic File Access* (``/access/datafile/{id}``) through
``DataAccessApi``, whose requests are streamed to disk here.

Every file lands in a cache folder laid out like the dataset (``directoryLabel/label``)
and is checked against the checksum Dataverse reports (``dataFile.checksum`` of type
MD5, SHA-1, SHA-256 or SHA-512). A file already in the cache with that checksum is not
downloaded again; a cut-off download resumes with ``Range: bytes=N-`` (or starts over
when the server ignores it); a file whose checksum does not match is deleted and
fetched once more, then reported. Only when every file is in place and verified is
anything ingested, so a failed pull writes nothing: our bundles are verified against
their MANIFEST.json and imported in one transaction; 6000-NN tables and A4NN ICPP'23
logs (loose or in archives) go through the ingest driver. The pull is recorded in
``publications`` (target ``pull``) with the server, persistent id, version and every
file's checksum; pulling the same version into the same database again downloads and
adds nothing.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
from pyDataverse.api import Api
from sqlalchemy import select

from a4nn.commons.bundle import MANIFEST, import_bundle, verify_bundle
from a4nn.commons.dataverse import CHECKSUMS, DataverseSession, RetryPolicy, TimedDataAccessApi
from a4nn.errors import A4nnError, InputFormatError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Publication
from a4nn.lineage.recorder import Recorder

#: where pulled files are kept unless told otherwise (beside the simulated data sets)
CACHE_ENV = "A4NN_DATA_DIR"
VERSION = re.compile(r"^(:latest|:latest-published|:draft|\d+(\.\d+)?)$")


class PullError(A4nnError):
    """A pull that cannot go on; the message names the dataset, file or server."""


@dataclass
class RemoteFile:
    """One file of a dataset version as Dataverse lists it."""

    path: str            # directoryLabel/label
    file_id: int
    size: int | None
    checksum_type: str   # MD5, SHA-1, SHA-256, SHA-512
    checksum: str
    restricted: bool

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "id": self.file_id, "size": self.size,
                "checksum": {"type": self.checksum_type, "value": self.checksum}}


@dataclass
class PullResult:
    """What a pull did."""

    persistent_id: str
    version: str
    kind: str                       # bundle, tables
    files: list[RemoteFile]
    downloaded: int = 0
    reused: int = 0
    bytes_downloaded: int = 0
    already_pulled: bool = False
    added: dict[str, int] = field(default_factory=dict)
    folder: Path | None = None
    problems: list[str] = field(default_factory=list)  # files the ingest rejected (named)
    seconds: dict[str, float] = field(default_factory=dict)  # listing, download, ingest (wall clock)

    def line(self) -> str:
        if self.already_pulled:
            return (f"{self.persistent_id} version {self.version}: already pulled into this database "
                    f"({len(self.files)} files); nothing downloaded or added")
        added = ", ".join(f"{value} {name}" for name, value in self.added.items())
        return (f"{self.persistent_id} version {self.version}: {len(self.files)} files ({self.downloaded} downloaded, "
                f"{self.reused} from the cache), {self.kind}: {added}")


def _digest(path: Path, kind: str) -> str:
    digest = hashlib.new(CHECKSUMS[kind])
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


class _StreamingAccessApi(TimedDataAccessApi):
    """pyDataverse's ``DataAccessApi`` whose ``get_datafile`` answer is written to a file.

    pyDataverse builds the request (URL, token header); this transport adds ``Range``
    for a partial file, streams the body to ``sink`` and hands pyDataverse back a
    bodiless response, so a large file never sits in memory.
    """

    sink: Path | None = None

    def _sync_request(self, method: Callable[..., httpx.Response], **kwargs: Any) -> httpx.Response:
        if self.sink is None:
            return super()._sync_request(method, **kwargs)
        if self.http is None:
            self.http = httpx.Client()
        http, sink, timeout = self.http, self.sink, self.request_timeout

        def streamed(**call: Any) -> httpx.Response:
            call.pop("timeout", None)
            auth, follow = call.pop("auth", None), call.pop("follow_redirects", True)
            headers = dict(call.pop("headers", None) or {})
            offset = sink.stat().st_size if sink.exists() else 0
            if offset:
                headers["Range"] = f"bytes={offset}-"
            request = http.build_request("GET", headers=headers, timeout=timeout, **call)
            response = http.send(request, stream=True, auth=auth, follow_redirects=follow)
            try:
                if response.status_code not in (200, 206):
                    response.read()
                    return response
                resumed = response.status_code == 206 and offset > 0
                with open(sink, "ab" if resumed else "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            finally:
                response.close()
            return httpx.Response(response.status_code, headers={"Content-Type": "application/octet-stream"},
                                  content=b"", request=request)

        return Api._sync_request(self, streamed, **kwargs)


class DataversePuller(DataverseSession):
    """Downloads one dataset version into a cache folder and ingests it."""

    def __init__(self, base_url: str, token: str | None = None, policy: RetryPolicy | None = None,
                 cache_dir: Path | str | None = None, report: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(base_url, token, policy, report, sleep)
        self.stream = _StreamingAccessApi(self.base_url, api_token=token)
        self.stream.request_timeout = self.policy.timeout
        root = Path(cache_dir) if cache_dir is not None else Path(os.environ.get(CACHE_ENV, "a4nn-data")) / "pull"
        self.cache_dir = root

    def _fail(self, message: str) -> Exception:
        return PullError(message)

    def close(self) -> None:
        super().close()
        self.stream.close()

    # ------------------------------------------------------------- listing
    def _get(self, what: str, function: Callable[[], httpx.Response], pid: str) -> dict[str, Any]:
        response = self._call(what, function)
        assert response is not None
        status = response.status_code
        if status == 404:
            raise PullError(f"{pid}: not found on {self.shown_url} ({what}: {self._redact(_text(response))})")
        if status in (401, 403):
            hint = "the token was rejected" if self._token else "it needs an API token (--token or DATAVERSE_API_TOKEN)"
            raise PullError(f"{pid} on {self.shown_url}: HTTP {status}, {hint}")
        body = self._expect(what, response, 200)
        if body.get("status") != "OK" or "data" not in body:
            raise PullError(f"{self.shown_url} answered {what} without a Dataverse 'data' field; is it a Dataverse "
                            f"installation?")
        return body

    def listing(self, pid: str, version: str = ":latest") -> tuple[str, list[RemoteFile]]:
        """(version as "major.minor" or "DRAFT", files) of ``pid``'s ``version``."""
        if not VERSION.match(version):
            raise PullError(f"version must be :latest, :latest-published, :draft, N or N.M, not {version!r}")
        data = self._get("read dataset version", lambda: self.native.get_dataset_version(pid, version), pid)["data"]
        state = data.get("versionState")
        number = (f"{data['versionNumber']}.{data.get('versionMinorNumber', 0)}"
                  if data.get("versionNumber") is not None else str(state or "DRAFT"))
        entries = self._get("list dataset files", lambda: self.native.get_datafiles_metadata(pid, version),
                            pid)["data"]
        files = []
        for entry in entries if isinstance(entries, list) else []:
            data_file = entry.get("dataFile") or {}
            directory = entry.get("directoryLabel") or ""
            label = entry.get("label") or data_file.get("filename")
            checksum = data_file.get("checksum") or ({"type": "MD5", "value": data_file["md5"]}
                                                      if data_file.get("md5") else {})
            kind = str(checksum.get("type", "")).upper()
            if not label or data_file.get("id") is None:
                continue
            path = f"{directory}/{label}" if directory else label
            if kind not in CHECKSUMS or not checksum.get("value"):
                raise PullError(f"{pid}: Dataverse reports no usable checksum for {path} ({checksum!r})")
            if ".." in Path(path).parts or Path(path).is_absolute():
                raise PullError(f"{pid}: refusing file path {path!r} (outside the dataset folder)")
            files.append(RemoteFile(path, int(data_file["id"]), data_file.get("filesize"), kind,
                                    str(checksum["value"]).lower(), bool(entry.get("restricted"))))
        return number, files

    # ----------------------------------------------------------- download
    def folder_for(self, pid: str, version: str) -> Path:
        host = _safe(httpx.URL(self.base_url).host or "server")
        return self.cache_dir / host / _safe(pid) / _safe(version)

    def fetch(self, remote: RemoteFile, folder: Path) -> tuple[bool, int]:
        """Make ``folder/remote.path`` hold the verified file; (downloaded?, bytes fetched)."""
        target = folder / remote.path
        if target.is_file() and _digest(target, remote.checksum_type) == remote.checksum:
            return False, 0
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        fetched = 0
        for attempt in (1, 2):
            before = partial.stat().st_size if partial.exists() else 0
            self._download(remote, partial)
            fetched += partial.stat().st_size - before
            if _digest(partial, remote.checksum_type) == remote.checksum:
                partial.replace(target)
                return True, fetched
            partial.unlink()
            if attempt == 1:
                self._say(f"{remote.path}: {remote.checksum_type} does not match what Dataverse reports; "
                          f"deleted, fetching it once more")
        raise PullError(f"{remote.path} (file id {remote.file_id}): {remote.checksum_type} of the download does not "
                        f"match the {remote.checksum} Dataverse reports, twice; the copy was deleted and nothing "
                        f"was ingested")

    def _download(self, remote: RemoteFile, partial: Path) -> None:
        """Stream one file into ``partial``, resuming after a cut-off connection."""
        what = f"download {remote.path}"
        self.stream.sink = partial
        try:
            attempt = 0
            while True:
                before = partial.stat().st_size if partial.exists() else 0
                response = self._call(what, lambda: self.stream.get_datafile(remote.file_id, is_pid=False))
                assert response is not None
                if response.status_code in (401, 403):
                    why = ("the token was rejected or may not read it" if self._token else
                           "it is restricted or unpublished: pass --token or set DATAVERSE_API_TOKEN")
                    raise PullError(f"{what}: HTTP {response.status_code}, {why}")
                if response.status_code == 416:  # asked past the end: start over
                    partial.unlink(missing_ok=True)
                    continue
                if response.status_code not in (200, 206):
                    raise PullError(f"{what}: HTTP {response.status_code} {self._redact(_text(response))}")
                if remote.size is None or partial.stat().st_size >= remote.size:
                    return
                attempt += 1  # a short body: the connection was cut; resume from what arrived
                if attempt > self.policy.retries:
                    raise PullError(f"{what}: the download stopped at {partial.stat().st_size} of {remote.size} "
                                    f"bytes {attempt} times; run the same command again to resume")
                self._say(f"{what}: cut off at {partial.stat().st_size} of {remote.size} bytes "
                          f"(from {before}); resuming")
        finally:
            self.stream.sink = None

    # -------------------------------------------------------------- ingest
    def _pulled_before(self, database: Database, pid: str, version: str, files: list[RemoteFile]) -> bool:
        records = sorted((f.path, f.checksum) for f in files)
        with database.engine.connect() as connection:
            rows = connection.execute(select(Publication.manifest).where(Publication.target == "pull",
                                                                          Publication.persistent_id == pid)).scalars()
            for manifest in rows:
                manifest = manifest or {}
                if manifest.get("server") == self.shown_url and manifest.get("version") == version and sorted(
                        (f["path"], f["checksum"]["value"]) for f in manifest.get("files", [])) == records:
                    return True
        return False

    def pull(self, pid: str, database: Database | Callable[[], Database], version: str = ":latest") -> PullResult:
        """Download, verify and ingest ``pid``'s ``version`` into ``database``; record it (target ``pull``).

        ``database`` may be a callable that opens it: it is called only once the dataset
        was found and holds something to ingest, so a bad persistent id or server leaves
        no database file behind.
        """
        started = time.perf_counter()
        number, files = self.listing(pid, version)
        listed = time.perf_counter()
        if not files:
            raise PullError(f"{pid} version {number} on {self.shown_url} has no files")
        kind = _kind(files, pid)
        if callable(database):
            database = database()
        result = PullResult(pid, number, kind, files, seconds={"listing": listed - started})
        if self._pulled_before(database, pid, number, files):
            result.already_pulled = True
            return result
        folder = self.folder_for(pid, number)
        result.folder = folder
        for remote in files:
            downloaded, fetched = self.fetch(remote, folder)
            result.downloaded += downloaded
            result.reused += not downloaded
            result.bytes_downloaded += fetched
        fetched_at = time.perf_counter()
        result.seconds["download"] = fetched_at - listed
        search_ids: list[int | None] = [None]
        if kind == "bundle":
            report = verify_bundle(folder)
            if not report.ok:
                raise PullError(f"{pid}: the downloaded bundle does not match its MANIFEST.json: "
                                + "; ".join(report.problems()[:5]) + "; nothing was ingested")
            try:
                imported = import_bundle(database, folder)
            except InputFormatError as exc:
                raise PullError(f"{pid}: {exc}; nothing was ingested") from None
            search_ids = list(imported.search_ids.values()) or [None]
            result.added = {"networks": imported.architectures, "epochs": imported.epochs,
                            "predictions": imported.predictions, "checkpoints": imported.checkpoints}
        else:
            from a4nn.commons.ingest.driver import ingest_paths

            summary = ingest_paths(database, [folder / f.path for f in files], progress=False)
            if summary.networks == 0 and summary.present == 0 and not summary.skipped:
                raise PullError(_unrecognised(pid, files))
            result.added = {"networks": summary.networks, "epoch rows": summary.rows,
                            "already present": summary.present}
            result.problems = list(summary.skipped)
        result.seconds["ingest"] = time.perf_counter() - fetched_at
        manifest = {"server": self.shown_url, "version": number, "requested_version": version, "kind": kind,
                    "files": [f.record() for f in files], "added": result.added, "problems": result.problems}
        recorder = Recorder(database)
        url = f"{self.shown_url}/dataset.xhtml?persistentId={pid}"
        for search_id in search_ids:
            recorder.log_publication(search_id, "pull", manifest, persistent_id=pid, url=url)
        return result


def _text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:120]


def _is_table(path: str) -> bool:
    name = path.lower()
    return name.endswith((".txt", ".tsv", ".csv", ".dat", ".zip", ".tar.gz", ".tgz", ".tar"))


def _kind(files: list[RemoteFile], pid: str) -> str:
    """``bundle`` when the dataset is one of our bundles, else ``tables`` (6000-NN / ICPP'23 readers)."""
    names = {f.path for f in files}
    if MANIFEST in names and "search.json" in names:
        return "bundle"
    if not any(_is_table(f.path) for f in files):
        raise PullError(_unrecognised(pid, files))
    return "tables"


def _unrecognised(pid: str, files: list[RemoteFile]) -> str:
    shown = ", ".join(f.path for f in files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return (f"{pid} holds no file a4nn-commons can ingest (an export bundle with MANIFEST.json, 6000-NN tables or "
            f"A4NN ICPP'23 logs); found: {shown}")
