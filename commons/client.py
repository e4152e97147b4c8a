"""A small Python client of the query service that returns pandas DataFrames.

``Client("http://127.0.0.1:8000").models("beam=low&acc>99")`` follows every
``next`` link and returns one DataFrame; keyword arguments build the same filter
(``models(beam="low", acc=">99")``). Service errors raise :class:`ServiceError`
carrying the status code and the service's one-line message.
"""
from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from a4nn.errors import A4nnError
from a4nn.lineage.filters import MAX_LIMIT, build_filter
from a4nn.lineage.urls import display_url


class ServiceError(A4nnError):
    """The service answered with an error (4xx/5xx) or could not be reached."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class Client:
    """DataFrames from a running ``a4nn-commons serve``."""

    def __init__(self, base_url: str, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _response(self, path: str) -> httpx.Response:
        """One GET; an unreachable service or a 4xx/5xx answer becomes one :class:`ServiceError` line."""
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach {display_url(self.base_url + path)}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise ServiceError(f"{response.status_code} from {path}: {detail}", response.status_code)
        return response

    def _get(self, path: str) -> Any:
        return self._response(path).json()

    def models(self, filter: str = "", page_size: int = 500, **terms: Any) -> pd.DataFrame:
        """Every model matching the filter (a grammar string and/or keyword terms), all pages."""
        if not 1 <= page_size <= MAX_LIMIT:
            raise ValueError(f"page_size must be from 1 to {MAX_LIMIT}")
        query = build_filter(filter, **terms)
        path: str | None = f"/models?{query}{'&' if query else ''}limit={page_size}"
        items: list[dict[str, Any]] = []
        while path:
            page = self._get(path)
            items.extend(page["items"])
            path = page["next"]
        return pd.DataFrame(items)

    def model(self, model_id: int) -> dict[str, Any]:
        """One model's detail (architecture, genome, train params, engine config, dataset)."""
        return self._get(f"/models/{int(model_id)}")

    def epochs(self, model_id: int) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/models/{int(model_id)}/epochs"))

    def predictions(self, model_id: int) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/models/{int(model_id)}/predictions"))

    def lineage(self, model_id: int, direction: str = "up", hops: int = 1) -> dict[str, Any]:
        return self._get(f"/models/{int(model_id)}/lineage?direction={direction}&hops={int(hops)}")

    def checkpoints(self, model_id: int) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/models/{int(model_id)}/checkpoints"))

    def download_checkpoint(self, model_id: int, epoch: float) -> bytes:
        """The bytes of one checkpoint file (``/models/{id}/checkpoints/{epoch}``); the caller checks the sha256."""
        return self._response(f"/models/{int(model_id)}/checkpoints/{float(epoch):g}").content

    def searches(self) -> pd.DataFrame:
        return pd.DataFrame(self._get("/searches"))

    def search(self, search_id: int) -> dict[str, Any]:
        return self._get(f"/searches/{int(search_id)}")

    def pareto(self, search_id: int, metric: str = "acc") -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/searches/{int(search_id)}/pareto?metric={metric}"))

    def datasets(self) -> pd.DataFrame:
        return pd.DataFrame(self._get("/datasets"))

    def close(self) -> None:
        self._http.close()
