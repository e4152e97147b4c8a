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

Creating the dataset is made idempotent the same way: before the create, a client-side
key (a UUID) is written to ``.dataverse.json`` and to an in-progress ``publications``
row, and sent in the dataset metadata as an ``otherId`` (agency ``a4nn-commons``).
Before creating again, the publisher looks the draft up by that key (Search API, then
the collection's contents, which do not depend on the search index), so a create that
timed out after the server stored it is found instead of leaving a second dataset.
Every request also has a wall-clock deadline: httpx's timeout bounds each read, so a
server trickling one byte at a time would otherwise never time out.

The API token is held by the pyDataverse auth object and is never put in a message:
every error text passes through :meth:`DataversePublisher._redact` as a last guard.
"""
from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import json
import logging
import math
import re
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

import httpx
from pyDataverse.api import DataAccessApi, NativeApi, SearchApi
from pyDataverse.exceptions import ApiAuthorizationError, DatasetNotFoundError, DataverseNotFoundError
from pyDataverse.models import Datafile
from pyDataverse.models import Dataset as DataverseDataset
from sqlalchemy import select, update
from tqdm import tqdm

from a4nn.commons.bundle import MANIFEST, STATE_FILE, read_manifest, verify_bundle
from a4nn.errors import A4nnError
from a4nn.lineage.database import Database
from a4nn.lineage.models import Publication, Search
from a4nn.lineage.recorder import Recorder, file_sha256
from a4nn.lineage.urls import display_url

log = logging.getLogger(__name__)

SUBJECT = "Computer and Information Science"
LICENSES = {  # name -> URI, as Dataverse >= 5.10 lists them
    "CC0 1.0": "http://creativecommons.org/publicdomain/zero/1.0",
    "CC BY 4.0": "http://creativecommons.org/licenses/by/4.0",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: ``otherIdAgency`` of the client-side key that makes dataset creation idempotent
KEY_AGENCY = "a4nn-commons"
#: how many of a collection's unpublished datasets the lookup by key reads at most
MAX_DRAFTS_CHECKED = 50
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
    """Gives every pyDataverse request a total deadline and one shared connection pool.

    pyDataverse 0.3.5 calls the module-level ``httpx.get``/``httpx.post`` with
    ``timeout=None``: no timeout at all, and a new client (TLS context, handshake)
    per request. Routing those calls through one ``httpx.Client`` keeps connections
    alive across the many uploads of a bundle; the library's own request code
    (auth header, 401 handling, multipart building) is still what runs. The body is
    streamed and the clock checked after every chunk, because httpx's timeout is per
    read and a body trickled byte by byte would never trip it.
    """

    request_timeout: float = 60.0
    http: httpx.Client | None = None

    def _sync_request(self, method: Callable[..., httpx.Response], **kwargs: Any) -> httpx.Response:
        timeout = self.request_timeout
        if self.http is None:
            self.http = httpx.Client()
        verb = {httpx.get: "GET", httpx.post: "POST", httpx.put: "PUT", httpx.delete: "DELETE"}.get(method)
        http = self.http

        def timed(**call: Any) -> httpx.Response:
            if verb is None:  # not a module-level httpx call: only the per-read timeout applies
                call["timeout"] = timeout
                return method(**call)
            call.pop("timeout", None)
            auth, follow = call.pop("auth", None), call.pop("follow_redirects", True)
            request = http.build_request(verb, timeout=timeout, **call)
            return send_with_deadline(http, request, timeout, auth=auth, follow_redirects=follow)

        return super()._sync_request(timed, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


def send_with_deadline(http: httpx.Client, request: httpx.Request, seconds: float, **send: Any) -> httpx.Response:
    """Send ``request`` and read the whole answer within ``seconds`` of wall-clock time.

    Raises :class:`httpx.ReadTimeout` when the answer is not complete by then, however
    steadily its bytes arrive; the returned response holds its body in memory.
    """
    deadline = time.monotonic() + seconds
    response = http.send(request, stream=True, **send)
    try:
        chunks = []
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"the answer took longer than {seconds:g} s in total", request=request)
    finally:
        response.close()
    return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks),
                          request=request, extensions={"http_version": response.extensions.get("http_version", b"")})


class TimedNativeApi(_TimedRequests, NativeApi):
    """pyDataverse's native API with per-request timeouts."""


class TimedDataAccessApi(_TimedRequests, DataAccessApi):
    """pyDataverse's data access API with per-request timeouts."""


class TimedSearchApi(_TimedRequests, SearchApi):
    """pyDataverse's Search API with per-request timeouts."""


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

    def to_json(self, client_key: str | None = None) -> str:
        """Dataverse's dataset JSON, built and schema-validated with ``pyDataverse.models.Dataset``.

        pyDataverse 0.3.5's schema knows the license only as a string; installations
        since Dataverse 5.10 expect ``{"name", "uri"}``, so a known license is
        rewritten to that form after validation. ``client_key`` goes in as an
        ``otherId`` so that the dataset can be found again before it has a known pid.
        """
        self.validate()
        dataset = DataverseDataset()
        extra = {"otherId": [{"otherIdAgency": KEY_AGENCY, "otherIdValue": client_key}]} if client_key else {}
        dataset.set({**extra,
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

    def __post_init__(self) -> None:
        """Refuse values that would hang (inf, nan) or mean nothing (negative)."""
        for name in ("timeout", "backoff", "max_backoff", "lock_timeout", "poll_interval", "release_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or (name == "timeout" and value == 0):
                kind = "a positive" if name == "timeout" else "a non-negative"
                raise PublishError(f"{name} must be {kind} finite number of seconds, not {value!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise PublishError(f"retries must be a whole number >= 0, not {self.retries!r}")

    def delay(self, attempt: int, retry_after: float) -> float:
        """Seconds before retry ``attempt`` (1, 2, ...): exponential backoff, or the server's
        Retry-After when longer, but never more than ``max_backoff``."""
        backoff = self.backoff * 2 ** min(attempt - 1, 60)
        return min(self.max_backoff, max(backoff, retry_after))


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


def retry_after_seconds(value: str | None, now: float | None = None) -> float:
    """``Retry-After`` (delay-seconds or an HTTP-date) as seconds >= 0; 0 for anything unusable.

    ``inf``, ``nan``, negative numbers and garbage are ignored rather than trusted: a
    hostile or broken server must not make a client sleep forever or crash it.
    """
    if not value:
        return 0.0
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return 0.0
        if when is None:
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return response.text[:200]


class DataverseSession:
    """The pyDataverse APIs of one installation with timeouts, retries, lock waits and a redacted token.

    Shared by the publisher and the puller (:mod:`a4nn.commons.pull`); ``token`` may be
    None for anonymous reads of published datasets.
    """

    def __init__(self, base_url: str, token: str | None, policy: RetryPolicy | None = None,
                 report: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url.rstrip("/")
        #: the server as messages, state files and publication records show it (no userinfo or token)
        self.shown_url = display_url(self.base_url)
        self.policy = policy or RetryPolicy()
        self._token = token
        self._report = report
        self._sleep = sleep
        self.native = TimedNativeApi(self.base_url, api_token=token)
        self.access = TimedDataAccessApi(self.base_url, api_token=token)
        self.search = TimedSearchApi(self.base_url, api_token=token)
        for api in (self.native, self.access, self.search):
            api.request_timeout = self.policy.timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown_url!r})"

    def close(self) -> None:
        """Close the HTTP connections (the publisher can still be used; it reconnects)."""
        self.native.close()
        self.access.close()
        self.search.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing
    def _redact(self, text: object) -> str:
        return str(text).replace(self._token, "***") if self._token else str(text)

    def _fail(self, message: str) -> Exception:
        """The exception this session raises (the puller raises its own kind)."""
        return PublishError(message)

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
                raise self._fail(f"{what}: the Dataverse API token was rejected (HTTP 401); "
                                   f"check --token / DATAVERSE_API_TOKEN") from None
            except (DatasetNotFoundError, DataverseNotFoundError) as exc:
                raise self._fail(f"{what}: {self._redact(exc)}") from None
            except json.JSONDecodeError:  # pyDataverse parses some answers itself (create, 401/404 messages)
                raise self._fail(f"{what}: the server's answer is not JSON; is {self.shown_url} a Dataverse "
                                   f"installation? (nothing was retried: the request may have taken effect, "
                                   f"run the same command again to resume)") from None
            except httpx.TimeoutException:
                problem = f"no complete answer within {self.policy.timeout:g} s"
            except httpx.TransportError as exc:
                problem = f"connection error ({exc.__class__.__name__}: {self._redact(exc)})"
            else:
                status = response.status_code
                if status == 403 and "lock" in _message(response).lower() and pid is not None:
                    if time.monotonic() > lock_deadline:
                        raise self._fail(f"{what}: dataset {pid} stayed locked for {self.policy.lock_timeout:g} s")
                    self._say(f"{what}: dataset is locked; waiting")
                    self.wait_for_unlock(pid)
                    continue
                if status != 429 and status < 500:
                    return response
                problem = f"HTTP {status} {self._redact(_message(response))[:120]}".strip()
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            attempt += 1
            if attempt > self.policy.retries:
                raise self._fail(f"{what} failed after {attempt} attempts: {problem}; "
                                   f"run the same command again to resume")
            delay = self.policy.delay(attempt, retry_after)
            self._say(f"{what}: {problem}; retry {attempt}/{self.policy.retries} in {delay:.2f} s")
            self._sleep(delay)

    def _expect(self, what: str, response: httpx.Response | None, *ok: int) -> dict[str, Any]:
        if response is None:
            return {}
        if response.status_code not in ok:
            raise self._fail(f"{what}: HTTP {response.status_code} {self._redact(_message(response))}")
        try:
            body = response.json()
        except ValueError:
            raise self._fail(f"{what}: HTTP {response.status_code} but the answer is not JSON; is "
                               f"{self.shown_url} a Dataverse installation?") from None
        if not isinstance(body, dict):
            raise self._fail(f"{what}: HTTP {response.status_code} with an unexpected JSON answer")
        return body

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
                raise self._fail(f"dataset {pid} is still locked ({', '.join(map(str, locks))}) after "
                                   f"{self.policy.lock_timeout:g} s; run again later to resume")
            log.info("dataset %s locked (%s); waiting", pid, ", ".join(map(str, locks)))
            self._sleep(self.policy.poll_interval)



class DataversePublisher(DataverseSession):
    """Creates, fills and releases one Dataverse dataset per bundle (re-runs resume)."""

    def __init__(self, base_url: str, token: str, policy: RetryPolicy | None = None,
                 report: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep):
        if not token:
            raise PublishError("a Dataverse API token is required (--token or DATAVERSE_API_TOKEN)")
        super().__init__(base_url, token, policy, report, sleep)

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

    def _read_state(self, folder: Path) -> dict[str, Any]:
        path = self._state_path(folder)
        if not path.is_file():
            return {}
        try:
            state = json.loads(path.read_text())
        except ValueError:
            raise PublishError(f"{path} is not valid JSON; delete it to publish a new dataset") from None
        return state if isinstance(state, dict) and state.get("server") == self.shown_url else {}

    def _write_state(self, folder: Path, collection: str, key: str, pid: str | None) -> None:
        self._state_path(folder).write_text(json.dumps(
            {"server": self.shown_url, "collection": collection, "client_key": key, "persistent_id": pid},
            indent=2) + "\n")

    def _publication_rows(self, database: Database, manifest_sha: str) -> list[Any]:
        """This bundle's ``dataverse`` publications on this server, newest first."""
        with database.engine.connect() as connection:
            rows = connection.execute(select(Publication.id, Publication.persistent_id, Publication.manifest)
                                      .where(Publication.target == "dataverse")
                                      .order_by(Publication.id.desc())).all()
        return [row for row in rows if (row.manifest or {}).get("server") == self.shown_url
                and (row.manifest or {}).get("manifest_sha256") == manifest_sha]

    def _remembered(self, folder: Path, manifest_sha: str, database: Database | None) -> tuple[str | None, str | None]:
        """(persistent id, client key) of an earlier run: from ``.dataverse.json``, else ``publications``."""
        state = self._read_state(folder)
        if state.get("persistent_id") or state.get("client_key"):
            return state.get("persistent_id") or None, state.get("client_key") or None
        if database is not None:
            for row in self._publication_rows(database, manifest_sha):
                key = (row.manifest or {}).get("client_key")
                if row.persistent_id or key:
                    return row.persistent_id, key
        return None, None

    def _search_names(self, folder: Path) -> list[str]:
        try:
            return [s["name"] for s in json.loads((folder / "search.json").read_text())["searches"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _record_progress(self, database: Database, folder: Path, manifest_sha: str, entry: dict[str, Any],
                         pid: str | None, url: str | None = None) -> None:
        """Insert or update this bundle's ``dataverse`` publication rows (one per search).

        Written before the create (status ``creating``, with the client key) and again
        before the first upload, so a run that dies, and whose ``.dataverse.json`` is then
        lost, still finds its dataset.
        """
        key = entry.get("client_key")
        rows = [row.id for row in self._publication_rows(database, manifest_sha)
                if key and (row.manifest or {}).get("client_key") == key]
        if rows:
            with database.engine.begin() as connection:
                connection.execute(update(Publication).where(Publication.id.in_(rows))
                                   .values(manifest=entry, persistent_id=pid, url=url))
            return
        names = self._search_names(folder)
        with database.engine.connect() as connection:
            ids = connection.execute(select(Search.id).where(Search.name.in_(names))).scalars().all() if names else []
        recorder = Recorder(database)
        for search_id in ids or [None]:
            recorder.log_publication(search_id, "dataverse", entry, persistent_id=pid, url=url)

    def _dataset_key(self, pid: str) -> list[str]:
        """The ``otherId`` values of agency ``a4nn-commons`` in the dataset's latest version."""
        response = self._call("read dataset", lambda: self.native.get_dataset(pid), pid)
        if response is None or response.status_code != 200:
            return []
        body = self._expect("read dataset", response, 200)
        version = (body.get("data") or {}).get("latestVersion") or {}
        fields = ((version.get("metadataBlocks") or {}).get("citation") or {}).get("fields") or []
        keys = []
        for entry in fields:
            if isinstance(entry, dict) and entry.get("typeName") == "otherId":
                for other in entry.get("value") or []:
                    agency = ((other or {}).get("otherIdAgency") or {}).get("value")
                    if agency == KEY_AGENCY:
                        keys.append(((other or {}).get("otherIdValue") or {}).get("value"))
        return keys

    def find_by_key(self, collection: str, key: str) -> str | None:
        """The persistent id of the dataset in ``collection`` created with client key ``key``, if any.

        First the Search API (``q`` = the key, ``type=dataset``, ``subtree`` = the
        collection; drafts are visible to the token's owner), then, because the search
        index may lag a fresh create, the collection's contents (Native API), reading the
        unpublished datasets newest first. A candidate counts only when its metadata
        carries the key as an ``otherId``.
        """
        candidates: list[str] = []
        response = self._call("search for the dataset by its key", lambda: self.search.search(
            quote(f'"{key}"'), data_type="dataset", subtree=collection, per_page=10))
        if response is not None and response.status_code == 200:
            body = self._expect("search for the dataset by its key", response, 200)
            for item in (body.get("data") or {}).get("items") or []:
                if isinstance(item, dict) and item.get("global_id"):
                    candidates.append(str(item["global_id"]))
        for pid in candidates:
            if key in self._dataset_key(pid):
                return pid
        response = self._call(f"list collection {collection!r}", lambda: self.native.get_dataverse_contents(collection))
        if response is None or response.status_code != 200:
            return None
        items = self._expect(f"list collection {collection!r}", response, 200).get("data") or []
        drafts = [item for item in items if isinstance(item, dict) and item.get("type") == "dataset"
                  and not item.get("publicationDate") and item.get("identifier")]
        drafts.sort(key=lambda item: item.get("id") or 0, reverse=True)
        for item in drafts[:MAX_DRAFTS_CHECKED]:
            pid = f"{item.get('protocol', 'doi')}:{item.get('authority')}/{item['identifier']}"
            if pid not in candidates and key in self._dataset_key(pid):
                return pid
        return None

    def _create(self, collection: str, metadata: CitationMetadata, key: str) -> str:
        """Create the dataset; a retry after a lost answer first looks for the one already made."""
        document = metadata.to_json(client_key=key)
        what = f"create dataset in collection {collection!r}"
        found: list[str] = []

        def landed() -> bool:
            pid = self.find_by_key(collection, key)
            if pid:
                found.append(pid)
            return pid is not None

        response = self._call(what, lambda: self.native.create_dataset(collection, document), landed=landed)
        if response is None:
            self._say(f"found dataset {found[0]} created by the attempt whose answer was lost")
            return found[0]
        body = self._expect(what, response, 201)
        pid = (body.get("data") or {}).get("persistentId") if isinstance(body.get("data"), dict) else None
        if not pid:
            raise PublishError(f"{what}: the server answered 201 without a persistentId")
        self._say(f"created dataset {pid} in collection {collection!r}")
        return str(pid)

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
                                   f"publishing; check it on {self.shown_url} and run again")
            self._sleep(self.policy.poll_interval)

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

        pid, key = self._remembered(folder, manifest_sha, database)
        created = False
        entry = {"server": self.shown_url, "collection": collection, "manifest_sha256": manifest_sha,
                 "client_key": key, "status": "creating", "files": manifest["files"]}
        if pid is None and key is not None:
            pid = self.find_by_key(collection, key)
            if pid is not None:
                self._say(f"found dataset {pid} of an earlier run by its key")
        if pid is None:
            key = key or str(uuid.uuid4())
            entry["client_key"] = key
            self._write_state(folder, collection, key, None)
            if database is not None:
                self._record_progress(database, folder, manifest_sha, entry, None)
            pid = self._create(collection, metadata, key)
            created = True
        else:
            self._say(f"resuming dataset {pid}")
        key = key or str(uuid.uuid4())  # a state file from before keys: give the rows one now
        entry.update(client_key=key, status="uploading")
        # remember the pid at once: a run that dies after this point resumes into the same dataset
        self._write_state(folder, collection, key, pid)
        if database is not None:
            self._record_progress(database, folder, manifest_sha, entry, pid)
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
        url = f"{self.shown_url}/dataset.xhtml?persistentId={pid}"
        result = PublishResult(pid, url, uploaded, skipped, state, version, created)
        if database is not None:
            entry.update(status="done", state=state, version=version)
            self._record_progress(database, folder, manifest_sha, entry, pid, url)
        self._say(f"{pid}: {state}{f' version {version}' if version else ''} at {url}")
        return result
