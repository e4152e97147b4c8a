"""A Dataverse-native-API-compatible test server (stdlib ``http.server`` on 127.0.0.1, in a thread).

It implements the routes the pyDataverse 0.3.5 client calls for publishing, with the
behaviour of a real installation that a publisher must cope with:

* ``POST /api/dataverses/{alias}/datasets`` → 201 with ``persistentId`` (404 unknown
  collection, 400 when citation metadata is incomplete);
* ``POST /api/datasets/:persistentId/add`` (multipart ``file`` + ``jsonData``) → file
  entry with an MD5 checksum; a clashing name is renamed ``name-1.ext`` as Dataverse
  does; a CSV uploaded *without* ``tabIngest: false`` is ingested (renamed ``.tab`` and
  the dataset locked for ingest); 403 "dataset lock" while locked;
* ``GET /api/datasets/:persistentId/locks/``, ``GET /api/datasets/:persistentId/``,
  ``GET /api/datasets/:persistentId/versions/{version}/files``;
* ``POST /api/datasets/:persistentId/actions/:publish?type=major|minor`` → 403 while
  locked; otherwise a ``finalizePublication`` lock for a few polls, then RELEASED;
* ``GET /api/access/datafile/{id}`` → the bytes;
* ``GET /api/search?q=...&type=dataset&subtree=ALIAS`` (Search API: datasets whose
  metadata contains the query text; drafts only for a valid token) and
  ``GET /api/dataverses/{alias}/contents`` (Native API "Show Contents of a Dataverse
  Collection"), which the publisher uses to find a dataset by its client-side key;
* for pulling (Native API "Get JSON Representation of a Dataset" and "List Files in a
  Dataset", Data Access API "Basic File Access"):
  ``GET /api/datasets/:persistentId/versions/{version}`` and ``.../versions/{version}/files``
  with ``:latest``, ``:latest-published``, ``:draft``, ``x`` or ``x.y`` (released
  versions are kept as snapshots); anonymous requests see released versions only;
  file entries carry ``dataFile.checksum {type, value}`` (MD5 by default, SHA-1 or
  SHA-256 with ``checksum_type``); ``GET /api/access/datafile/{id}`` honours
  ``Range: bytes=N-`` (206), and a restricted file or a draft needs a valid token;
* ``X-Dataverse-key`` auth: 401 for a bad key on the native API, 403 on the access API.

Faults are injected through :class:`Faults`: N error responses (optionally with a
``Retry-After`` header), slow responses that make the client time out (the request
still takes effect, as on a real server), answers whose body is replaced by non-JSON
text (the request still takes effect), bodies trickled one byte at a time, a search
index that lags behind creates, persistent failure of uploads after K successes (an
interrupted run), and locks that last K polls.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

LOCK_MESSAGE = "Dataset cannot be edited due to dataset lock."
REQUIRED_CITATION = ("title", "author", "datasetContact", "dsDescription", "subject")


@dataclass
class Faults:
    """Injectable misbehaviour; every counter is consumed as requests arrive."""

    errors: int = 0                   # next N requests answer ``error_status``
    error_status: int = 500
    error_path: str = ""              # only requests whose path contains this
    retry_after: str | None = None    # Retry-After header value sent with injected errors
    slow: int = 0                     # next N matching requests are handled, then answered after ``delay`` s
    delay: float = 0.0
    slow_path: str = ""
    mangle: int = 0                   # next N matching requests are handled, then answered with ``mangle_body``
    mangle_path: str = ""
    mangle_body: bytes = b"<html><body>Service temporarily unavailable</body></html>"
    trickle: int = 0                  # next N matching answers are sent one byte every ``trickle_interval`` s
    trickle_path: str = ""
    trickle_interval: float = 0.5
    search_index_lag: bool = False    # the Search API does not see datasets yet (Solr not updated)
    truncate: int = 0                 # next N matching answers stop halfway (Content-Length promises more)
    truncate_path: str = ""
    corrupt: int = 0                  # next N matching downloads come with their first byte flipped
    corrupt_path: str = ""
    uploads_before_failure: int | None = None  # after K successful adds every add answers 500 (a dying run)
    lock_polls_after_upload: int = 0  # each add leaves an EditInProgress lock for K lock polls
    publish_lock_polls: int = 2       # finalizePublication lasts K polls

    def take(self, name: str, path: str) -> bool:
        """Consume one unit of fault ``name`` if it applies to ``path``."""
        count, where = getattr(self, name), getattr(self, f"{'error' if name == 'errors' else name}_path")
        if isinstance(count, bool):
            return count and where in path
        if count > 0 and where in path:
            setattr(self, name, count - 1)
            return True
        return False


@dataclass
class StoredFile:
    id: int
    label: str
    directory_label: str
    description: str
    content: bytes
    content_type: str
    tab_ingest: bool
    restricted: bool = False
    checksum_type: str = "MD5"        # what Dataverse reports: MD5, SHA-1, SHA-256 or SHA-512

    @property
    def md5(self) -> str:
        return hashlib.md5(self.content).hexdigest()

    @property
    def checksum(self) -> dict[str, str]:
        algorithm = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}[self.checksum_type]
        return {"type": self.checksum_type, "value": hashlib.new(algorithm, self.content).hexdigest()}

    def entry(self, dataset_version_id: int) -> dict[str, Any]:
        data_file = {"id": self.id, "persistentId": "", "filename": self.label, "contentType": self.content_type,
                     "filesize": len(self.content), "description": self.description,
                     "storageIdentifier": f"local://{self.id:08x}", "rootDataFileId": -1,
                     "checksum": self.checksum, "tabularData": self.tab_ingest,
                     "creationDate": "2026-01-01"}
        if self.checksum_type == "MD5":
            data_file["md5"] = self.md5
        entry = {"description": self.description, "label": self.label, "restricted": self.restricted, "version": 1,
                 "datasetVersionId": dataset_version_id, "dataFile": data_file}
        if self.directory_label:
            entry["directoryLabel"] = self.directory_label
        return entry


@dataclass
class StoredDataset:
    id: int
    pid: str
    collection: str
    metadata: dict[str, Any]
    files: list[StoredFile] = field(default_factory=list)
    state: str = "DRAFT"
    version: tuple[int, int] | None = None       # last released (major, minor)
    locks: dict[str, int] = field(default_factory=dict)  # lock type -> polls left
    pending_release: str | None = None
    released: dict[tuple[int, int], list[StoredFile]] = field(default_factory=dict)  # version -> its files
    released_ids: set[int] = field(default_factory=set)  # ids of files in any released version

    def poll_locks(self) -> list[str]:
        """Current locks; each poll brings timed locks closer to release (and finishes a publication)."""
        current = [name for name, left in self.locks.items() if left > 0]
        for name in current:
            self.locks[name] -= 1
        self.locks = {name: left for name, left in self.locks.items() if left > 0}
        if self.pending_release and "finalizePublication" not in self.locks:
            major, minor = self.version or (0, 0)
            if self.version is None:
                self.version = (1, 0)
            elif self.pending_release == "major":
                self.version = (major + 1, 0)
            else:
                self.version = (major, minor + 1)
            self.state, self.pending_release = "RELEASED", None
            self.released[self.version] = list(self.files)
            self.released_ids.update(f.id for f in self.files)
        return current


class DataverseState:
    """Everything the server holds; tests inspect it directly."""

    def __init__(self, token: str, collections: tuple[str, ...]):
        self.token = token
        self.collections = set(collections)
        self.datasets: dict[str, StoredDataset] = {}
        self.faults = Faults()
        self.requests: list[tuple[str, str, int]] = []   # (method, path, status) of every request
        self.checksum_type = "MD5"                        # given to every file uploaded from now on
        self.lock = threading.Lock()
        self._ids = 0
        self.file_index: dict[int, tuple[StoredDataset, StoredFile]] = {}
        self.successful_uploads = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def by_file_id(self, file_id: int) -> tuple[StoredDataset, StoredFile] | None:
        return self.file_index.get(file_id)


def _citation_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    fields = metadata.get("datasetVersion", {}).get("metadataBlocks", {}).get("citation", {}).get("fields", [])
    return {entry.get("typeName"): entry.get("value") for entry in fields if isinstance(entry, dict)}


def _unique_label(dataset: StoredDataset, label: str, directory: str) -> str:
    """Dataverse renames a clashing file ``name.ext`` to ``name-1.ext``, ``name-2.ext``, ..."""
    taken = {(f.directory_label, f.label) for f in dataset.files}
    if (directory, label) not in taken:
        return label
    stem, dot, extension = label.rpartition(".")
    if not dot:
        stem, extension = label, ""
    counter = 1
    while True:
        candidate = f"{stem}-{counter}{dot}{extension}"
        if (directory, candidate) not in taken:
            return candidate
        counter += 1


class Handler(BaseHTTPRequestHandler):
    server: "DataverseServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return  # keep pytest output clean

    # ------------------------------------------------------------ plumbing
    @property
    def state(self) -> DataverseState:
        return self.server.state

    def _send(self, status: int, payload: Any = None, body: bytes | None = None,
              content_type: str = "application/json", headers: dict[str, str] | None = None,
              trickle: float = 0.0, truncate: bool = False) -> None:
        data = body if body is not None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if truncate:  # promise the whole body, send half, hang up
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif trickle:
                for index in range(len(data)):
                    self.wfile.write(data[index:index + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); the request still took effect

    @staticmethod
    def _error(status: int, message: str) -> tuple:
        return status, {"status": "ERROR", "message": message}

    @staticmethod
    def _ok(data: Any, status: int = 200) -> tuple:
        return status, {"status": "OK", "data": data}

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        url = urlparse(self.path)
        path, query = url.path.rstrip("/"), parse_qs(url.query)
        path = re.sub(r"^/api/v1/", "/api/", path)  # Dataverse serves both; pyDataverse's NativeApi uses v1
        faults = self.state.faults
        body = self._body()
        extra: dict[str, Any] = {}
        with self.state.lock:
            if faults.take("errors", path):
                answer = self._error(faults.error_status, "Internal server error (injected)")
                if faults.retry_after is not None:
                    extra["headers"] = {"Retry-After": faults.retry_after}
                slow = False
            else:
                slow = faults.take("slow", path)
                answer = self._dispatch(path, query, body)  # the work happens even when the answer comes late
                if faults.take("mangle", path):
                    answer = (answer[0], None, faults.mangle_body, "text/html")
                if faults.take("trickle", path):
                    extra["trickle"] = faults.trickle_interval
                if faults.take("truncate", path):
                    extra["truncate"] = True
                if answer[0] in (200, 206) and len(answer) > 2 and answer[2] and faults.take("corrupt", path):
                    answer = (answer[0], None, bytes([answer[2][0] ^ 0xFF]) + answer[2][1:], *answer[3:])
            self.state.requests.append((self.command, url.path, answer[0]))
        if slow:
            time.sleep(faults.delay)
        self._send(*answer, **extra)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    # -------------------------------------------------------------- routes
    def _dispatch(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple:
        """Handle one request; returns the arguments of :meth:`_send`."""
        method = self.command
        key = self.headers.get("X-Dataverse-key")
        if key is not None and key != self.state.token:
            if path.startswith("/api/access/"):
                return self._error(403, "Bad api key ")
            return self._error(401, "Bad api key ")
        match = re.fullmatch(r"/api/dataverses/([^/]+)/datasets", path)
        if method == "POST" and match:
            return self._create(match.group(1), body, key)
        match = re.fullmatch(r"/api/access/datafile/(\d+)", path)
        if method == "GET" and match:
            return self._download(int(match.group(1)), key)
        if method == "GET" and path == "/api/search":
            return self._search(query, key)
        match = re.fullmatch(r"/api/dataverses/([^/]+)/contents", path)
        if method == "GET" and match:
            return self._contents(match.group(1), key)
        if not path.startswith("/api/datasets/:persistentId"):
            return self._error(404, f"API endpoint does not exist on this server: {path}")
        if key is None and method != "GET":
            return self._error(401, "This API call requires an API token.")
        pid = (query.get("persistentId") or [""])[0]
        dataset = self.state.datasets.get(pid)
        if dataset is None or (key is None and dataset.version is None):
            return self._error(404, f"Dataset with Persistent ID {pid} not found.")
        rest = path[len("/api/datasets/:persistentId"):]
        match = re.fullmatch(r"/versions/([^/]+)(/files)?", rest)
        if method == "GET" and match:
            return self._version(dataset, match.group(1), key, files_only=bool(match.group(2)))
        if method == "POST" and rest == "/add":
            return self._add(dataset, body)
        if method == "GET" and rest == "/locks":
            return self._ok([{"lockType": name, "date": "2026-01-01T00:00:00Z", "user": "tester",
                              "dataset": dataset.pid, "message": None} for name in dataset.poll_locks()])
        if method == "POST" and rest == "/actions/:publish":
            return self._publish(dataset, (query.get("type") or ["minor"])[0])
        if method == "GET" and rest == "":
            dataset.poll_locks()
            return self._ok(self._dataset_json(dataset))
        return self._error(404, f"API endpoint does not exist on this server: {path}")

    def _version(self, dataset: StoredDataset, name: str, key: str | None, files_only: bool) -> tuple:
        """One version of a dataset (its JSON, or only its file list), as Dataverse resolves the names."""
        draft = dataset.state == "DRAFT" and key is not None
        number: tuple[int, int] | None = None
        if name == ":draft" or (name == ":latest" and draft):
            if not draft:
                return self._error(404, f"Dataset version {name} of dataset {dataset.id} not found")
            files, state = dataset.files, "DRAFT"
        else:
            if name in (":latest", ":latest-published"):
                number = max(dataset.released) if dataset.released else None
            elif re.fullmatch(r"\d+(\.\d+)?", name):
                major, _, minor = name.partition(".")
                number = (int(major), int(minor or 0))
            else:
                return self._error(400, f"Illegal version identifier '{name}'")
            if number not in dataset.released:
                return self._error(404, f"Dataset version {name} of dataset {dataset.id} not found")
            files, state = dataset.released[number], "RELEASED"
        entries = [f.entry(dataset.id) for f in files]
        if files_only:
            return self._ok(entries)
        version = {"id": dataset.id, "datasetId": dataset.id, "datasetPersistentId": dataset.pid,
                   "versionState": state, "metadataBlocks": dataset.metadata["datasetVersion"]["metadataBlocks"],
                   "files": entries}
        if number is not None:
            version["versionNumber"], version["versionMinorNumber"] = number
        return self._ok(version)

    def _create(self, alias: str, body: bytes, key: str | None) -> tuple:
        if key is None:
            return self._error(401, "This API call requires an API token.")
        if alias not in self.state.collections:
            return self._error(404, f"Can't find dataverse with identifier='{alias}'")
        try:
            metadata = json.loads(body)
        except ValueError:
            return self._error(400, "Error parsing Json: not JSON")
        fields = _citation_fields(metadata)
        missing = [name for name in REQUIRED_CITATION if not fields.get(name)]
        contacts = fields.get("datasetContact") or []
        if not any((c.get("datasetContactEmail") or {}).get("value") for c in contacts if isinstance(c, dict)):
            missing.append("datasetContactEmail")
        if missing:
            return self._error(400, f"Validation Failed: missing {', '.join(missing)}")
        number = self.state.next_id()
        pid = f"doi:10.5072/FK2/T{number:05d}"
        self.state.datasets[pid] = StoredDataset(number, pid, alias, metadata)
        return self._ok({"id": number, "persistentId": pid}, status=201)

    def _search(self, query: dict[str, list[str]], key: str | None) -> tuple:
        """Search API: datasets whose metadata holds the (unquoted) ``q`` text; drafts only with a token."""
        text = (query.get("q") or [""])[0].strip().strip('"')
        kinds = set((query.get("type") or ["dataset"])[0].split(","))
        subtree = (query.get("subtree") or [None])[0]
        if subtree is not None and subtree not in self.state.collections:
            return self._error(400, f"Could not find dataverse with alias {subtree}")
        items = []
        if "dataset" in kinds and not self.state.faults.search_index_lag:
            for dataset in self.state.datasets.values():
                if subtree is not None and dataset.collection != subtree:
                    continue
                if dataset.version is None and key is None:
                    continue
                if text and text != "*" and text not in json.dumps(dataset.metadata):
                    continue
                title = _citation_fields(dataset.metadata).get("title")
                items.append({"name": title, "type": "dataset", "url": f"https://doi.org/{dataset.pid[4:]}",
                              "global_id": dataset.pid, "identifier_of_dataverse": dataset.collection,
                              "versionState": dataset.state, "fileCount": len(dataset.files)})
        per_page = int((query.get("per_page") or ["10"])[0])
        return self._ok({"q": text, "total_count": len(items), "start": 0, "spelling_alternatives": {},
                         "items": items[:per_page], "count_in_response": len(items[:per_page])})

    def _contents(self, alias: str, key: str | None) -> tuple:
        """Native API "Show Contents of a Dataverse Collection"."""
        if alias not in self.state.collections:
            return self._error(404, f"Can't find dataverse with identifier='{alias}'")
        items = []
        for dataset in self.state.datasets.values():
            if dataset.collection != alias or (dataset.version is None and key is None):
                continue
            authority, _, identifier = dataset.pid[len("doi:"):].partition("/")
            item = {"id": dataset.id, "identifier": identifier, "persistentUrl": f"https://doi.org/{dataset.pid[4:]}",
                    "protocol": "doi", "authority": authority, "publisher": "Test Dataverse",
                    "storageIdentifier": f"file://{dataset.pid[4:]}", "type": "dataset"}
            if dataset.version is not None:
                item["publicationDate"] = "2026-01-01"
            items.append(item)
        return self._ok(items)

    def _add(self, dataset: StoredDataset, body: bytes) -> tuple:
        faults = self.state.faults
        if faults.uploads_before_failure is not None and self.state.successful_uploads >= faults.uploads_before_failure:
            return self._error(500, "Internal server error (injected: the run dies here)")
        if dataset.locks:
            return self._error(403, LOCK_MESSAGE)
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + body)
        upload, json_data = None, {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                upload = (part.get_filename() or "unnamed", part.get_payload(decode=True) or b"",
                          part.get_content_type())
            elif name == "jsonData":
                json_data = json.loads(part.get_content())
        if upload is None:
            return self._error(400, "A file must be specified")
        filename, content, content_type = upload
        directory = json_data.get("directoryLabel") or ""
        tab_ingest = str(json_data.get("tabIngest", "true")).lower() != "false"
        ingest = tab_ingest and filename.endswith(".csv")
        if ingest:  # Dataverse ingests tabular files into .tab unless told not to
            filename = filename[:-4] + ".tab"
            dataset.locks["Ingest"] = 2
        stored = StoredFile(self.state.next_id(), _unique_label(dataset, filename, directory), directory,
                            json_data.get("description", ""), content, content_type, ingest,
                            restricted=bool(json_data.get("restrict")), checksum_type=self.state.checksum_type)
        dataset.files.append(stored)
        self.state.file_index[stored.id] = (dataset, stored)
        dataset.state = "DRAFT"
        self.state.successful_uploads += 1
        if faults.lock_polls_after_upload:
            dataset.locks["EditInProgress"] = faults.lock_polls_after_upload
        return self._ok({"files": [stored.entry(dataset.id)]})

    def _publish(self, dataset: StoredDataset, release: str) -> tuple:
        if release not in ("major", "minor", "updatecurrent"):
            return self._error(400, f"Illegal 'type' parameter value '{release}'. It needs to be either 'major', "
                                    f"'minor', or 'updatecurrent'.")
        if dataset.locks:
            return self._error(403, LOCK_MESSAGE)
        if dataset.state == "RELEASED":
            return self._error(400, "Cannot publish as minor version. Re-try as major release.")
        dataset.pending_release = release
        dataset.locks["finalizePublication"] = self.state.faults.publish_lock_polls
        return (202, {"status": "WORKFLOW_IN_PROGRESS",
                          "data": {"message": "Publication of the dataset is in progress", "persistentId": dataset.pid}})

    def _dataset_json(self, dataset: StoredDataset) -> dict[str, Any]:
        authority, _, identifier = dataset.pid[len("doi:"):].partition("/")
        version = {"id": dataset.id, "datasetId": dataset.id, "datasetPersistentId": dataset.pid,
                   "versionState": dataset.state, "license": dataset.metadata["datasetVersion"].get("license"),
                   "metadataBlocks": dataset.metadata["datasetVersion"]["metadataBlocks"],
                   "files": [f.entry(dataset.id) for f in dataset.files]}
        if dataset.state == "RELEASED" and dataset.version:
            version["versionNumber"], version["versionMinorNumber"] = dataset.version
        return {"id": dataset.id, "identifier": identifier, "persistentUrl": f"https://doi.org/{dataset.pid[4:]}",
                "protocol": "doi", "authority": authority, "publisher": "Test Dataverse",
                "storageIdentifier": f"file://{dataset.pid[4:]}", "latestVersion": version}

    def _download(self, file_id: int, key: str | None) -> tuple:
        found = self.state.by_file_id(file_id)
        if found is None:
            return self._error(404, f"File not found for given id: {file_id}")
        dataset, stored = found
        if key is None and (stored.restricted or stored.id not in dataset.released_ids):
            return self._error(403, "Not authorized to access this object via this API endpoint. "
                                    "Please check your code for typos, or consult our API guide")
        content = stored.content
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if wanted and int(wanted.group(1)) < len(content):
            start = int(wanted.group(1))
            return (206, None, content[start:], stored.content_type,
                    {"Content-Range": f"bytes {start}-{len(content) - 1}/{len(content)}"})
        return 200, None, content, stored.content_type


class DataverseServer(ThreadingHTTPServer):
    """The server; use as a context manager, ``base_url`` is ``http://127.0.0.1:PORT``."""

    daemon_threads = True

    def __init__(self, token: str = "test-token", collections: tuple[str, ...] = ("a4nn",)):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = DataverseState(token, collections)
        self._thread = threading.Thread(target=self.serve_forever, name="dataverse-test-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def put_dataset(self, files: dict[str, bytes], collection: str = "a4nn", title: str = "A pulled commons",
                    release: bool = True, restricted: tuple[str, ...] = ()) -> str:
        """Store a dataset directly (as if deposited and, with ``release``, published as 1.0); returns its pid."""
        with self.state.lock:
            number = self.state.next_id()
            pid = f"doi:10.5072/FK2/P{number:05d}"
            metadata = {"datasetVersion": {"license": {"name": "CC0 1.0"}, "metadataBlocks": {"citation": {
                "fields": [{"typeName": "title", "value": title}]}}}}
            dataset = StoredDataset(number, pid, collection, metadata)
            for path, content in files.items():
                directory, _, label = path.rpartition("/")
                stored = StoredFile(self.state.next_id(), label, directory, "", content, "application/octet-stream",
                                    False, restricted=path in restricted, checksum_type=self.state.checksum_type)
                dataset.files.append(stored)
                self.state.file_index[stored.id] = (dataset, stored)
            if release:
                dataset.version, dataset.state = (1, 0), "RELEASED"
                dataset.released[(1, 0)] = list(dataset.files)
                dataset.released_ids.update(f.id for f in dataset.files)
            self.state.datasets[pid] = dataset
        return pid

    def __enter__(self) -> "DataverseServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
