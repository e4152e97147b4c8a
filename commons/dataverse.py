"""Publish a record-trail bundle to a Dataverse installation with the pyDataverse client.

The publisher is built for the way real installations fail: every HTTP call has a
timeout (pyDataverse 0.3.5 itself calls httpx with ``timeout=None``, so a stalled
server would hang a run forever); 5xx, 429 and connection errors are retried with
exponential backoff; a 403 "dataset lock" waits for the dataset's locks to clear; and
a run is idempotent: the dataset's persistent id is remembered in the bundle folder
(``.dataverse.json``, or found again in ``publications``) and files already in the
dataset with the same checksum are skipped, so a publish interrupted halfway is simply
run again. A timed-out upload may still have been stored by the server, so before
retrying one the publisher looks at the dataset again instead of uploading twice.

The API token is held by the pyDataverse auth object and is never put in a message:
every error text passes through :meth:`DataversePublisher._redact` as a last guard.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import httpx
from pyDataverse.api import DataAccessApi, NativeApi
from pyDataverse.exceptions import ApiAuthorizationError, DatasetNotFoundError, DataverseNotFoundError
from pyDataverse.models import Datafile
from pyDataverse.models import Dataset as DataverseDataset
from sqlalchemy import select
from tqdm import tqdm

from a4nn.commons.bundle import MANIFEST, STATE_FILE, read_manifest, verify_bundle
from a4nn.errors import A4nnError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Publication, Search
from a4nn.lineage.recorder import Recorder, file_sha256

log = logging.getLogger(__name__)

SUBJECT = "Computer and Information Science"
LICENSES = {  # name -> URI, as Dataverse >= 5.10 lists them
    "CC0 1.0": "http://creativecommons.org/publicdomain/zero/1.0",
    "CC BY 4.0": "http://creativecommons.org/licenses/by/4.0",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CHECKSUMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
FILE_DESCRIPTIONS = {
    "architectures": "One row per trained network: genome, FLOPs, parameters, status, accuracies, fitness.",
    "epochs": "Per-epoch training and validation metrics of every network.",
    "predictions": "Every interaction with the fitness-prediction engine: predicted accuracy, fitted parameters.",
    "genomes": "Distinct genomes (bit strings) with their encoding and hash.",
    "genome_parents": "Evolution edges between genomes (crossover, mutation).",
    "checkpoints": "Saved model states: epoch, sha256, size, file in this dataset.",
    "search": "Search configuration, seed, code version, data set and exporting environment.",
    "engine_config": "Prediction-engine settings per search.",
    "README": "How the tables are organised and how to load them with pandas.",
    "MANIFEST": "sha256 and size of every file of the bundle (a4nn-commons verify).",
}


class PublishError(A4nnError):
    """Publishing failed; the message says what to do (re-running resumes where it stopped)."""


# ------------------------------------------------------------------ client
class _TimedRequests:
    """Gives every pyDataverse request a timeout and one shared connection pool.

    pyDataverse 0.3.5 calls the module-level ``httpx.get``/``httpx.post`` with
    ``timeout=None``: no timeout at all, and a new client (TLS context, handshake)
    per request. Routing those calls through one ``httpx.Client`` keeps connections
    alive across the many uploads of a bundle; the library's own request code
    (auth header, 401 handling, multipart building) is still what runs.
    """

    request_timeout: float = 60.0
    http: httpx.Client | None = None

    def _sync_request(self, method: Callable[..., httpx.Response], **kwargs: Any) -> httpx.Response:
        timeout = self.request_timeout
        if self.http is None:
            self.http = httpx.Client()
        shared = {httpx.get: self.http.get, httpx.post: self.http.post, httpx.put: self.http.put,
                  httpx.delete: self.http.delete}.get(method, method)

        def timed(**call: Any) -> httpx.Response:
            call["timeout"] = timeout
            return shared(**call)

        return super()._sync_request(timed, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


class TimedNativeApi(_TimedRequests, NativeApi):
    """pyDataverse's native API with per-request timeouts."""


class TimedDataAccessApi(_TimedRequests, DataAccessApi):
    """pyDataverse's data access API with per-request timeouts."""


# ---------------------------------------------------------------- metadata
@dataclass
class CitationMetadata:
    """The citation block Dataverse requires, plus keywords and license.

    ``authors`` are mappings with ``name`` ("Last, First") and optional
    ``affiliation``.
    """

    title: str
    authors: list[Mapping[str, str]]
    contact_name: str
    contact_email: str
    description: str
    keywords: list[str] = field(default_factory=list)
    subject: str = SUBJECT
    license_name: str = "CC0 1.0"

    def validate(self) -> None:
        problems = []
        if not self.title.strip():
            problems.append("a title")
        if not self.authors or not all(a.get("name", "").strip() for a in self.authors):
            problems.append("at least one author with a name")
        if not EMAIL.match(self.contact_email or ""):
            problems.append(f"a contact e-mail address (got {self.contact_email!r})")
        if not self.description.strip():
            problems.append("a description")
        if problems:
            raise PublishError("citation metadata needs " + ", ".join(problems))

    def to_json(self) -> str:
        """Dataverse's dataset JSON, built and schema-validated with ``pyDataverse.models.Dataset``.

        pyDataverse 0.3.5's schema knows the license only as a string; installations
        since Dataverse 5.10 expect ``{"name", "uri"}``, so a known license is
        rewritten to that form after validation.
        """
        self.validate()
        dataset = DataverseDataset()
        dataset.set({
            "title": self.title,
            "author": [{"authorName": a["name"], **({"authorAffiliation": a["affiliation"]} if a.get("affiliation") else {})}
                       for a in self.authors],
            "datasetContact": [{"datasetContactName": self.contact_name, "datasetContactEmail": self.contact_email}],
            "dsDescription": [{"dsDescriptionValue": self.description}],
            "subject": [self.subject],
            "keyword": [{"keywordValue": k} for k in self.keywords],
            "license": self.license_name,
        })
        if not dataset.validate_json():
            raise PublishError("the citation metadata does not validate against pyDataverse's dataset schema")
        document = json.loads(dataset.json())
        if self.license_name in LICENSES:
            document["datasetVersion"]["license"] = {"name": self.license_name, "uri": LICENSES[self.license_name]}
        return json.dumps(document)


def file_json_data(persistent_id: str, relative: str) -> str:
    """``jsonData`` of one upload: description and folder via ``pyDataverse.models.Datafile``, no tabular ingest.

    Tabular ingest would turn the CSV twins into ``.tab`` files with other bytes, which
    breaks the manifest's checksums, so it is switched off for every file.
    """
    directory, _, name = relative.rpartition("/")
    stem = name.split(".")[0]
    description = FILE_DESCRIPTIONS.get(stem, "Model checkpoint." if relative.startswith("checkpoints/") else "")
    datafile = Datafile()
    values = {"pid": persistent_id, "filename": name, "description": description or name}
    if directory:
        values["directoryLabel"] = directory
    datafile.set(values)
    if not datafile.validate_json():
        raise PublishError(f"file metadata of {relative} does not validate against pyDataverse's schema")
    data = json.loads(datafile.json())
    data.pop("pid", None)
    data.pop("filename", None)
    data["tabIngest"] = False
    return json.dumps(data)


# ----------------------------------------------------------------- publish
@dataclass
class RetryPolicy:
    """Timeouts, retries and waits; the defaults suit a public installation."""

    timeout: float = 60.0           # seconds per HTTP call
    retries: int = 5                # extra attempts on 5xx/429/connection errors/timeouts
    backoff: float = 1.0            # first retry delay, doubled each time
    max_backoff: float = 30.0
    lock_timeout: float = 900.0     # how long to wait for a dataset lock to clear
    poll_interval: float = 2.0      # between lock / release polls
    release_timeout: float = 900.0  # how long to wait for RELEASED after publishing


@dataclass
class PublishResult:
    persistent_id: str
    url: str
    uploaded: int
    skipped: int
    state: str
    version: str | None
    created: bool


def _checksum(path: Path, algorithm: str) -> str:
    if algorithm == "sha256":
        return file_sha256(path)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return response.text[:200]


class DataversePublisher:
    """Creates, fills and releases one Dataverse dataset per bundle (re-runs resume)."""

    def __init__(self, base_url: str, token: str, policy: RetryPolicy | None = None,
                 report: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep):
        if not token:
            raise PublishError("a Dataverse API token is required (--token or DATAVERSE_API_TOKEN)")
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._token = token
        self._report = report
        self._sleep = sleep
        self.native = TimedNativeApi(self.base_url, api_token=token)
        self.access = TimedDataAccessApi(self.base_url, api_token=token)
        for api in (self.native, self.access):
            api.request_timeout = self.policy.timeout

    def __repr__(self) -> str:
        return f"DataversePublisher({self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP connections (the publisher can still be used; it reconnects)."""
        self.native.close()
        self.access.close()

    def __enter__(self) -> "DataversePublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing
    def _redact(self, text: object) -> str:
        return str(text).replace(self._token, "***") if self._token else str(text)

    def _say(self, line: str) -> None:
        line = self._redact(line)
        log.info(line)
        if self._report:
            self._report(line)

    def _invoke(self, function: Callable[[], httpx.Response]) -> httpx.Response:
        """Call pyDataverse quietly: its deprecation warnings and print() output go to the debug log."""
        captured = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return function()
            finally:
                if captured.getvalue().strip():
                    log.debug("pyDataverse: %s", self._redact(captured.getvalue().strip()))

    def _call(self, what: str, function: Callable[[], httpx.Response], pid: str | None = None,
              landed: Callable[[], bool] | None = None) -> httpx.Response | None:
        """One API call with timeout, retries with backoff, and lock waits.

        ``landed`` is asked before every retry whether the previous attempt took
        effect after all (a timed-out upload the server stored); then the call
        returns None instead of repeating it.
        """
        attempt = 0
        lock_deadline = time.monotonic() + self.policy.lock_timeout
        while True:
            if attempt and landed is not None and landed():
                return None
            retry_after = 0.0
            try:
                response = self._invoke(function)
            except ApiAuthorizationError:
                raise PublishError(f"{what}: the Dataverse API token was rejected (HTTP 401); "
                                   f"check --token / DATAVERSE_API_TOKEN") from None
            except (DatasetNotFoundError, DataverseNotFoundError) as exc:
                raise PublishError(f"{what}: {self._redact(exc)}") from None
            except httpx.TimeoutException:
                problem = f"no answer within {self.policy.timeout:g} s"
            except httpx.TransportError as exc:
                problem = f"connection error ({exc.__class__.__name__}: {self._redact(exc)})"
            else:
                status = response.status_code
                if status == 403 and "lock" in _message(response).lower() and pid is not None:
                    if time.monotonic() > lock_deadline:
                        raise PublishError(f"{what}: dataset {pid} stayed locked for {self.policy.lock_timeout:g} s")
                    self._say(f"{what}: dataset is locked; waiting")
                    self.wait_for_unlock(pid)
                    continue
                if status != 429 and status < 500:
                    return response
                problem = f"HTTP {status} {self._redact(_message(response))[:120]}".strip()
                try:
                    retry_after = float(response.headers.get("Retry-After", 0))
                except ValueError:
                    retry_after = 0.0
            attempt += 1
            if attempt > self.policy.retries:
                raise PublishError(f"{what} failed after {attempt} attempts: {problem}; "
                                   f"run the same command again to resume")
            delay = max(retry_after, min(self.policy.max_backoff, self.policy.backoff * 2 ** (attempt - 1)))
            self._say(f"{what}: {problem}; retry {attempt}/{self.policy.retries} in {delay:.2f} s")
            self._sleep(delay)

    def _expect(self, what: str, response: httpx.Response | None, *ok: int) -> dict[str, Any]:
        if response is None:
            return {}
        if response.status_code not in ok:
            raise PublishError(f"{what}: HTTP {response.status_code} {self._redact(_message(response))}")
        try:
            return response.json()
        except ValueError:
            raise PublishError(f"{what}: the server did not answer JSON") from None

    # -------------------------------------------------------------- queries
    def wait_for_unlock(self, pid: str) -> None:
        """Poll the dataset's locks until there are none (or ``lock_timeout`` passes)."""
        deadline = time.monotonic() + self.policy.lock_timeout
        while True:
            body = self._expect("read dataset locks", self._call("read dataset locks",
                                                                 lambda: self.native.get_dataset_lock(pid)), 200)
            locks = [lock.get("lockType") for lock in body.get("data") or []]
            if not locks:
                return
            if time.monotonic() > deadline:
                raise PublishError(f"dataset {pid} is still locked ({', '.join(map(str, locks))}) after "
                                   f"{self.policy.lock_timeout:g} s; run again later to resume")
            log.info("dataset %s locked (%s); waiting", pid, ", ".join(map(str, locks)))
            self._sleep(self.policy.poll_interval)

    def remote_files(self, pid: str) -> dict[str, dict[str, Any]]:
        """Files of the dataset's latest version by path (``directoryLabel/label``)."""
        body = self._expect("list dataset files", self._call(
            "list dataset files", lambda: self.native.get_datafiles_metadata(pid, ":latest"), pid), 200)
        files = {}
        for entry in body.get("data") or []:
            directory = entry.get("directoryLabel") or ""
            path = f"{directory}/{entry['label']}" if directory else entry["label"]
            data_file = entry.get("dataFile") or {}
            checksum = data_file.get("checksum") or ({"type": "MD5", "value": data_file["md5"]} if data_file.get("md5") else {})
            files[path] = {"id": data_file.get("id"), "checksum": checksum}
        return files

    def dataset_version(self, pid: str) -> tuple[str, str | None]:
        """(versionState, "major.minor" or None) of the dataset's latest version."""
        body = self._expect("read dataset", self._call("read dataset", lambda: self.native.get_dataset(pid), pid), 200)
        version = (body.get("data") or {}).get("latestVersion") or {}
        number = None
        if version.get("versionNumber") is not None:
            number = f"{version['versionNumber']}.{version.get('versionMinorNumber', 0)}"
        return str(version.get("versionState", "UNKNOWN")), number

    def download(self, file_id: int) -> bytes:
        """Bytes of one data file (used to check what a dataset holds)."""
        response = self._call("download file", lambda: self.access.get_datafile(file_id, is_pid=False))
        if response is None or response.status_code != 200:
            raise PublishError(f"download of file {file_id} failed: HTTP {getattr(response, 'status_code', '?')}")
        return response.content

    # ---------------------------------------------------------------- steps
    def _state_path(self, folder: Path) -> Path:
        return folder / STATE_FILE

    def _remembered_pid(self, folder: Path, manifest_sha: str, database: Database | None) -> str | None:
        path = self._state_path(folder)
        if path.is_file():
            try:
                state = json.loads(path.read_text())
            except ValueError:
                raise PublishError(f"{path} is not valid JSON; delete it to publish a new dataset") from None
            if state.get("server") == self.base_url and state.get("persistent_id"):
                return str(state["persistent_id"])
        if database is not None:
            with database.engine.connect() as connection:
                rows = connection.execute(select(Publication.persistent_id, Publication.manifest)
                                          .where(Publication.target == "dataverse")
                                          .order_by(Publication.id.desc())).all()
            for persistent_id, manifest in rows:
                if persistent_id and (manifest or {}).get("server") == self.base_url \
                        and (manifest or {}).get("manifest_sha256") == manifest_sha:
                    return persistent_id
        return None

    def _create(self, collection: str, metadata: CitationMetadata, folder: Path) -> str:
        document = metadata.to_json()
        response = self._call(f"create dataset in collection {collection!r}",
                              lambda: self.native.create_dataset(collection, document))
        body = self._expect(f"create dataset in collection {collection!r}", response, 201)
        pid = (body.get("data") or {}).get("persistentId")
        if not pid:
            raise PublishError("the server created a dataset but returned no persistentId")
        # remember it at once: a run that dies after this point resumes into the same dataset
        self._state_path(folder).write_text(json.dumps(
            {"server": self.base_url, "collection": collection, "persistent_id": pid}, indent=2) + "\n")
        self._say(f"created dataset {pid} in collection {collection!r}")
        return pid

    def _present(self, pid: str, relative: str, local: Path) -> bool:
        """Whether the dataset holds ``relative`` with the local file's checksum."""
        remote = self.remote_files(pid).get(relative)
        return remote is not None and self._same(remote, local, relative)

    def _same(self, remote: Mapping[str, Any], local: Path, relative: str) -> bool:
        checksum = remote.get("checksum") or {}
        algorithm = CHECKSUMS.get(str(checksum.get("type", "")).upper())
        if algorithm is None or not checksum.get("value"):
            raise PublishError(f"{relative}: the server reports no usable checksum ({checksum!r})")
        return _checksum(local, algorithm) == checksum["value"]

    def _post_file(self, pid: str, local: Path, json_data: str) -> httpx.Response:
        """``NativeApi.upload_datafile``'s request (same route, multipart ``file`` + ``jsonData``), file closed.

        pyDataverse 0.3.5's ``upload_datafile`` opens the file and never closes it, which
        leaves one descriptor per upload (and per retry) to the garbage collector; this
        sends the identical request through the client's own ``post_request``.
        """
        url = f"{self.native.base_url_api_native}/datasets/:persistentId/add?persistentId={pid}"
        with open(local, "rb") as handle:
            return self.native.post_request(url, data={"jsonData": json_data}, files={"file": (local.name, handle)})

    def _upload(self, pid: str, folder: Path, relative: str) -> bool:
        """Upload one file; False when it turned out to be there already (an earlier timed-out attempt)."""
        local = folder / relative
        json_data = file_json_data(pid, relative)
        response = self._call(f"upload {relative}", lambda: self._post_file(pid, local, json_data),
                              pid, landed=lambda: self._present(pid, relative, local))
        if response is None:
            return False
        body = self._expect(f"upload {relative}", response, 200)
        entry = ((body.get("data") or {}).get("files") or [{}])[0]
        stored = f"{entry.get('directoryLabel')}/{entry.get('label')}" if entry.get("directoryLabel") else entry.get("label")
        if stored != relative:
            raise PublishError(f"upload {relative}: the server stored it as {stored!r} (a name clash or tabular "
                               f"ingest); fix the dataset by hand or publish to a new one")
        return True

    def _release(self, pid: str, release: str) -> tuple[str, str | None]:
        self.wait_for_unlock(pid)
        response = self._call(f"publish {pid}", lambda: self.native.publish_dataset(pid, release_type=release), pid)
        self._expect(f"publish {pid}", response, 200, 202)
        deadline = time.monotonic() + self.policy.release_timeout
        while True:
            state, version = self.dataset_version(pid)
            if state == "RELEASED":
                self.wait_for_unlock(pid)
                return state, version
            if time.monotonic() > deadline:
                raise PublishError(f"dataset {pid} is still {state} {self.policy.release_timeout:g} s after "
                                   f"publishing; check it on {self.base_url} and run again")
            self._sleep(self.policy.poll_interval)

    def _record(self, database: Database, folder: Path, result: PublishResult, manifest: dict[str, Any],
                manifest_sha: str, collection: str) -> None:
        try:
            names = [s["name"] for s in json.loads((folder / "search.json").read_text())["searches"]]
        except (OSError, ValueError, KeyError, TypeError):
            names = []
        with database.engine.connect() as connection:
            ids = connection.execute(select(Search.id).where(Search.name.in_(names))).scalars().all() if names else []
        entry = {"server": self.base_url, "collection": collection, "manifest_sha256": manifest_sha,
                 "state": result.state, "version": result.version, "files": manifest["files"]}
        recorder = Recorder(database)
        for search_id in ids or [None]:
            recorder.log_publication(search_id, "dataverse", entry, persistent_id=result.persistent_id, url=result.url)

    # ------------------------------------------------------------------ run
    def publish_bundle(self, bundle_dir: Path | str, collection: str, metadata: CitationMetadata,
                       release: str | None = None, database: Database | None = None) -> PublishResult:
        """Create (or resume) the dataset of a bundle, upload its files, optionally release it.

        ``release`` is ``"major"``, ``"minor"`` or None (leave a draft). With a
        ``database`` the result is recorded in ``publications`` for the bundle's
        searches, and a dataset published before is found again there.
        """
        if release not in (None, "major", "minor"):
            raise PublishError(f"release must be major or minor, not {release!r}")
        folder = Path(bundle_dir)
        verified = verify_bundle(folder)
        if not verified.ok:
            raise PublishError(f"{folder} does not match its manifest, refusing to publish it: "
                               + "; ".join(verified.problems()[:8]))
        manifest = read_manifest(folder)
        manifest_sha = file_sha256(folder / MANIFEST)
        metadata.validate()

        pid = self._remembered_pid(folder, manifest_sha, database)
        created = pid is None
        if pid is None:
            pid = self._create(collection, metadata, folder)
        else:
            self._say(f"resuming dataset {pid}")
        remote = self.remote_files(pid)
        uploaded = skipped = 0
        names = sorted(manifest["files"]) + [MANIFEST]
        for relative in tqdm(names, desc="upload", unit="file", disable=None):
            if relative in remote:
                if not self._same(remote[relative], folder / relative, relative):
                    raise PublishError(f"{relative} in dataset {pid} differs from the bundle's file; the bundle "
                                       f"changed since it was uploaded; delete {STATE_FILE} to publish a new dataset")
                skipped += 1
                continue
            if self._upload(pid, folder, relative):
                uploaded += 1
            else:
                skipped += 1
        self._say(f"{uploaded} files uploaded, {skipped} already in {pid}")
        self.wait_for_unlock(pid)
        state, version = self.dataset_version(pid)
        if release is not None and state != "RELEASED":
            self._say(f"publishing {pid} ({release})")
            state, version = self._release(pid, release)
        url = f"{self.base_url}/dataset.xhtml?persistentId={pid}"
        result = PublishResult(pid, url, uploaded, skipped, state, version, created)
        if database is not None:
            self._record(database, folder, result, manifest, manifest_sha, collection)
        self._say(f"{pid}: {state}{f' version {version}' if version else ''} at {url}")
        return result
