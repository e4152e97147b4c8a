"""display_url, SecretURL, and the CLI messages that name a database URL (issue 23, item 2)."""
from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from a4nn.lineage.urls import SecretURL, display_url, redact, url_password

PASSWORD = "Sup3rS3cret"


@pytest.mark.parametrize("url, shown", [
    (f"postgresql://a4nn:{PASSWORD}@db-host:5432/a4nn", "postgresql://a4nn:***@db-host:5432/a4nn"),
    (f"postgresql+psycopg://a4nn:{PASSWORD}@h/d?options=-csearch_path%3Dx",
     "postgresql+psycopg://a4nn:***@h/d?options=-csearch_path%3Dx"),
    (f"postgresql://a4nn@h/d?password={PASSWORD}", "postgresql://a4nn@h/d?password=%2A%2A%2A"),
    ("sqlite:///a4nn.db", "sqlite:///a4nn.db"),
    (f"https://user:{PASSWORD}@demo.dataverse.org/api?key={PASSWORD}&q=1",
     "https://user:***@demo.dataverse.org/api?key=***&q=1"),
    ("http://127.0.0.1:8000/models?acc>99", "http://127.0.0.1:8000/models?acc>99"),
    ("10.0.0.5:6379", "10.0.0.5:6379"),
    (f"ray://head:{PASSWORD}@10.0.0.5:10001", "ray://head:***@10.0.0.5:10001"),
    (f"not a url but has x://u:{PASSWORD}@h inside", "not a url but has x://u:***@h inside"),
    (f"://a4nn:{PASSWORD}@h/d", "://a4nn:***@h/d"),
    (f"a4nn:{PASSWORD}@h/d", "a4nn:***@h/d"),
    (None, ""),
])
def test_display_url_hides_passwords_and_tokens(url, shown) -> None:
    assert display_url(url) == shown
    assert PASSWORD not in display_url(url)


def test_display_url_takes_sqlalchemy_urls() -> None:
    url = make_url(f"postgresql://a4nn:{PASSWORD}@h/d")
    assert display_url(url) == "postgresql://a4nn:***@h/d" and url_password(url) == PASSWORD
    assert url_password("sqlite:///x.db") is None
    assert redact(f"failed for {PASSWORD}!", PASSWORD, None) == "failed for ***!"


def test_secret_url_never_shows_its_password_but_reveals_it_to_connect() -> None:
    secret = SecretURL(f"postgresql://a4nn:{PASSWORD}@h/d")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret:>80}", repr([secret]), repr({"u": secret})):
        assert PASSWORD not in shown and "***" in shown
    copy = pickle.loads(pickle.dumps(secret))
    assert copy == secret and copy.reveal() == f"postgresql://a4nn:{PASSWORD}@h/d"
    assert SecretURL(make_url(f"postgresql://a4nn:{PASSWORD}@h/d")).reveal() == secret.reveal()


@pytest.mark.parametrize("args", [
    ["db", "upgrade", "--db", f"mysql://a4nn:{PASSWORD}@127.0.0.1/a4nn"],
    ["db", "current", "--db", f"postgresql://a4nn:{PASSWORD}@127.0.0.1:1/a4nn"],
    ["search", "--resume", "1", "--db", f"postgresql://a4nn:{PASSWORD}@127.0.0.1:1/a4nn"],
    ["serve", "--db", f"postgresql://a4nn:{PASSWORD}@127.0.0.1:1/a4nn"],
    ["db", "upgrade", "--db", f"://a4nn:{PASSWORD}@nonsense"],
])
def test_cli_errors_about_a_url_never_print_its_password(args: list[str], tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "a4nn.cli.main", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert PASSWORD not in result.stdout + result.stderr, result.stderr
    assert "Traceback" not in result.stderr

