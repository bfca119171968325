"""Pyramid behind HashStatic: ``cd examples && waitress-serve pyramid_app:application``."""

from pathlib import Path

from pyramid.config import Configurator
from pyramid.response import Response

from hashstatic import HashStatic

STATIC = Path(__file__).parent / "site"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pyramid and hashstatic</title>
<link rel="stylesheet" href="/static/css/site.css">
<script src="/static/js/app.js" defer></script>
</head>
<body>
<header><img src="/static/img/logo.svg" alt="" width="64" height="64"><h1>Pyramid</h1></header>
<main><p id="script-status">JavaScript has not run.</p></main>
</body>
</html>
"""


def index(request):
    return Response(PAGE)


def assets(request):
    # JSON is not rewritten: build hashed URLs with the middleware's url().
    return {"logo": request.environ["hashstatic.url"]("img/logo.svg")}


with Configurator() as config:
    config.add_route("index", "/")
    config.add_view(index, route_name="index")
    config.add_route("assets", "/api/assets")
    config.add_view(assets, route_name="assets", renderer="json")

application = HashStatic(config.make_wsgi_app(), root=STATIC, prefix="/static/")
