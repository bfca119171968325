"""The examples under examples/: each framework renders a page through HashStatic, and every
hashed URL on it is served, immutable, with the bytes its hash names."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin, urlsplit

import pytest
from webob import Request

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
SITE = EXAMPLES / "site"

_ATTRIBUTE_URL = re.compile(rb"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
_CSS_URL = re.compile(rb"""url\(\s*["']?([^"')]+?)["']?\s*\)|@import\s+["']([^"']+)["']""")
_HASH_IN_NAME = re.compile(r"\.([0-9a-f]{12})(?=\.[^./]+$|$)")
_HASH_IN_TEXT = re.compile(rb"\.[0-9a-f]{12}(?=\.[A-Za-z0-9]+\b)")


def load_example(relative: str, name: str) -> ModuleType:
    """Import an example file by path, once per test session."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: Flask finds its templates and Django its URLconf through sys.modules.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def md5_name(path: str, data: bytes) -> str:
    """``css/a.css`` -> ``css/a.<md5[:12]>.css``, computed here independently of hashstatic."""
    digest = hashlib.md5(data).hexdigest()[:12]
    head, _, last = path.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    name = f"{stem}.{digest}.{ext}" if dot and stem else f"{last}.{digest}"
    return f"{head}/{name}" if head else name


def local_file(url: str, prefix: str, roots: list[Path]) -> Path | None:
    """The file a (hashed or not) URL under prefix names, looked up in each root in turn."""
    path = urlsplit(url).path
    if not path.startswith(prefix):
        return None
    relative = _HASH_IN_NAME.sub("", path[len(prefix) :])
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    return None


def get(app, url: str):
    response = Request.blank(url).get_response(app)
    assert response.status_int == 200, url
    return response


def follow_hashed(app, url: str, prefix: str, roots: list[Path], seen: set[str]) -> None:
    """Fetch a hashed URL and check its bytes, its hash and its lifetime; stylesheets
    recursively: every url() in them that names a file is hashed and resolves too."""
    if url in seen:
        return
    seen.add(url)
    path = urlsplit(url).path
    found = _HASH_IN_NAME.search(path.rpartition("/")[2])
    assert found is not None, f"{url} is not hashed"
    file = local_file(url, prefix, roots)
    assert file is not None, url
    response = get(app, url)
    assert "immutable" in response.headers["Cache-Control"]
    body = response.body
    assert hashlib.md5(body).hexdigest()[:12] == found.group(1)
    if not path.endswith(".css"):
        assert body == file.read_bytes()
        return
    # A stylesheet is served with its own references hashed, and only that changed.
    assert _HASH_IN_TEXT.sub(b"", body) == file.read_bytes()
    for match in _CSS_URL.finditer(body):
        reference = (match.group(1) or match.group(2)).decode()
        if reference.startswith(("data:", "#")):
            continue
        target = urljoin(url, reference)
        if local_file(target, prefix, roots) is not None:
            follow_hashed(app, target, prefix, roots, seen)


def page_assets(html: bytes, page: str, prefix: str) -> list[str]:
    """Absolute paths of the src/href URLs of a page that fall under prefix."""
    urls = (urljoin(page, m.group(1).decode()) for m in _ATTRIBUTE_URL.finditer(html))
    return [url for url in urls if urlsplit(url).path.startswith(prefix)]


def check_page(app, page: str, expected: list[str], roots: list[Path] | None = None) -> None:
    """Render a page, check that it links the expected files hashed, and follow every link."""
    roots = roots or [SITE]
    html = get(app, page).body
    assets = page_assets(html, "http://localhost" + page, "/static/")
    assert assets
    linked = {urlsplit(url).path for url in assets}
    for relative in expected:
        file = SITE / relative
        if relative.endswith(".css"):
            # Its hash covers the rewritten bytes: found by name, checked by following it.
            pattern = re.compile(re.escape("/static/" + relative[:-4]) + r"\.[0-9a-f]{12}\.css")
            assert any(pattern.fullmatch(path) for path in linked), relative
        else:
            assert "/static/" + md5_name(relative, file.read_bytes()) in linked
    seen: set[str] = set()
    for url in assets:
        follow_hashed(app, url, "/static/", roots, seen)
    assert any(url.endswith(".css") for url in seen)


def logo_url() -> str:
    return "/static/" + md5_name("img/logo.svg", (SITE / "img/logo.svg").read_bytes())


PAGE_ASSETS = ["css/site.css", "js/app.js", "img/logo.svg"]


def test_flask_page_links_hashed_assets_that_are_served_immutable() -> None:
    flask_app = load_example("flask_app/app.py", "hashstatic_example_flask")
    check_page(flask_app.app, "/", PAGE_ASSETS)


def test_flask_template_global_hashes_urls_in_script_text() -> None:
    flask_app = load_example("flask_app/app.py", "hashstatic_example_flask")
    html = get(flask_app.app, "/").body
    assert f"const LOGO = {json.dumps(logo_url())};".encode() in html


def test_flask_json_gets_hashed_urls_from_the_environ() -> None:
    flask_app = load_example("flask_app/app.py", "hashstatic_example_flask")
    response = get(flask_app.app, "/api/assets")
    assert response.json["logo"] == logo_url()
    assert response.json["script"] == "/static/" + md5_name(
        "js/app.js", (SITE / "js/app.js").read_bytes()
    )


def test_flask_test_client_goes_through_the_middleware() -> None:
    flask_app = load_example("flask_app/app.py", "hashstatic_example_flask")
    with flask_app.app.test_client() as client:
        page = client.get("/")
        assert logo_url().encode() in page.data
        with client.get(logo_url()) as asset:
            assert asset.data == (SITE / "img/logo.svg").read_bytes()
            assert "immutable" in asset.headers["Cache-Control"]


def django_example() -> ModuleType:
    return load_example("django_project/project.py", "hashstatic_example_django")


def test_django_page_links_hashed_assets_that_are_served_immutable() -> None:
    project = django_example()
    check_page(project.application, "/", PAGE_ASSETS, roots=project.STATIC_DIRS)


def test_django_context_processor_hashes_urls_in_plain_text() -> None:
    project = django_example()
    response = get(project.application, "/welcome.txt")
    assert response.content_type == "text/plain"
    assert response.text == f"Welcome! Our logo: https://example.com{logo_url()}\n"


def test_django_admin_login_assets_are_hashed_and_their_stylesheets_resolve() -> None:
    project = django_example()
    admin_static = Path(project.STATIC_DIRS[1])
    html = get(project.application, "/admin/login/").body
    assets = page_assets(html, "http://localhost/admin/login/", "/static/")
    stylesheets = [url for url in assets if url.endswith(".css")]
    scripts = [url for url in assets if url.endswith(".js")]
    assert len(stylesheets) >= 3
    assert scripts
    for url in scripts:
        relative = _HASH_IN_NAME.sub("", urlsplit(url).path)[len("/static/") :]
        data = (admin_static / relative).read_bytes()
        assert urlsplit(url).path == "/static/" + md5_name(relative, data)
    seen: set[str] = set()
    for url in assets:
        follow_hashed(project.application, url, "/static/", project.STATIC_DIRS, seen)
    # The icons the stylesheets draw were reached through their url() references.
    assert any(url.endswith(".svg") for url in seen)


@pytest.mark.parametrize(
    ("relative", "name"),
    [
        pytest.param("pyramid_app.py", "hashstatic_example_pyramid", id="pyramid"),
        pytest.param("bottle_app.py", "hashstatic_example_bottle", id="bottle"),
    ],
)
def test_page_links_hashed_assets_that_are_served_immutable(relative: str, name: str) -> None:
    example = load_example(relative, name)
    check_page(example.application, "/", PAGE_ASSETS)


@pytest.mark.parametrize(
    ("relative", "name"),
    [
        pytest.param("pyramid_app.py", "hashstatic_example_pyramid", id="pyramid"),
        pytest.param("bottle_app.py", "hashstatic_example_bottle", id="bottle"),
    ],
)
def test_json_gets_hashed_urls_from_the_environ(relative: str, name: str) -> None:
    example = load_example(relative, name)
    assert get(example.application, "/api/assets").json == {"logo": logo_url()}


def test_bottle_template_hashes_urls_in_script_text() -> None:
    example = load_example("bottle_app.py", "hashstatic_example_bottle")
    html = get(example.application, "/").body
    assert f'const LOGO = "{logo_url()}";'.encode() in html


def readme_framework_blocks() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Frameworks\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_framework_snippets_are_the_example_code() -> None:
    sources = [
        (EXAMPLES / relative).read_text()
        for relative in (
            "flask_app/app.py",
            "django_project/project.py",
            "pyramid_app.py",
            "bottle_app.py",
        )
    ]
    blocks = readme_framework_blocks()
    assert len(blocks) >= 4
    for block in blocks:
        assert any(block in source for source in sources), block
