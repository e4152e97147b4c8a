"""A small Python client of the query service that returns pandas DataFrames."""
from __future__ import annotations

from typing import Any

import httpx
import pandas as pd


class Client:
    """``Client("http://127.0.0.1:8000").models("beam=low&acc>99")`` -> DataFrame of every matching model."""

    def __init__(self, base_url: str, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def _get(self, path: str) -> Any:
        response = self._http.get(path)
        if response.status_code >= 400:
            detail = response.json().get("detail") if response.headers.get("content-type", "").startswith("application/json") else response.text
            raise ValueError(f"{response.status_code} from {path}: {detail}")
        return response.json()

    def models(self, filter: str = "", page_size: int = 500) -> pd.DataFrame:
        """All models matching a filter-grammar string, following the keyset pages."""
        path: str | None = f"/models?{filter}{'&' if filter else ''}limit={page_size}"
        items: list[dict] = []
        while path:
            page = self._get(path)
            items.extend(page["items"])
            path = page["next"]
        return pd.DataFrame(items)

    def model(self, model_id: int) -> dict:
        return self._get(f"/models/{model_id}")

    def epochs(self, model_id: int) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/models/{model_id}/epochs"))

    def predictions(self, model_id: int) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/models/{model_id}/predictions"))

    def searches(self) -> pd.DataFrame:
        return pd.DataFrame(self._get("/searches"))

    def pareto(self, search_id: int, metric: str = "acc") -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/searches/{search_id}/pareto?metric={metric}"))

    def close(self) -> None:
        self._http.close()
