"""The README's examples are the code that is tested, and they work."""

from __future__ import annotations

import hashlib
import re
import runpy
import shlex

import pytest
from webob import Request

from hashstatic.cli import _parser
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
EXAMPLE = REPO_ROOT / "examples" / "plain_wsgi.py"


def code_block_after(heading: str) -> str:
    section = README.split(f"\n{heading}\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_readme_plain_wsgi_example_is_the_example_file() -> None:
    assert code_block_after("## Plain WSGI") == EXAMPLE.read_text()


def test_plain_wsgi_example_links_and_serves_the_hashed_stylesheet() -> None:
    application = runpy.run_path(str(EXAMPLE))["application"]
    page = Request.blank("/").get_response(application)
    assert page.status_int == 200
    found = re.fullmatch(
        rb'<link rel="stylesheet" href="(/static/css/site\.([0-9a-f]{12})\.css)"><h1>Hello</h1>',
        page.body,
    )
    assert found is not None
    css = Request.blank(found.group(1).decode()).get_response(application)
    assert css.status_int == 200
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # The hash in the URL is the MD5 of the bytes served there.
    assert hashlib.md5(css.body).hexdigest()[:12] == found.group(2).decode()


COMMANDS = re.findall(r"hashstatic (?:serve|manifest)\b[^`\n]*", README)


@pytest.mark.parametrize("command", [c for c in COMMANDS if "[" not in c])
def test_readme_command_lines_are_accepted_by_the_parser(command: str) -> None:
    args = _parser().parse_args(shlex.split(command)[1:])
    assert args.root


def test_readme_names_the_ci_test_command() -> None:
    assert "```sh\nbash .ci/test\n```" in README
    assert (REPO_ROOT / ".ci" / "test").is_file()
