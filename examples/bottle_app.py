"""Bottle behind HashStatic: ``cd examples && waitress-serve bottle_app:application``."""

from pathlib import Path

from bottle import Bottle, request, template

from hashstatic import HashStatic

STATIC = Path(__file__).parent / "site"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bottle and hashstatic</title>
<link rel="stylesheet" href="/static/css/site.css">
<script src="/static/js/app.js" defer></script>
<script>const LOGO = "{{url('img/logo.svg')}}";</script>
</head>
<body>
<header><img src="/static/img/logo.svg" alt="" width="64" height="64"><h1>Bottle</h1></header>
<main><p id="script-status">JavaScript has not run.</p></main>
</body>
</html>
"""

app = Bottle()


@app.get("/")
def index():
    # Script text is never rewritten: it gets its URL from the middleware's url().
    return template(PAGE, url=request.environ["hashstatic.url"])


@app.get("/api/assets")
def assets():
    return {"logo": request.environ["hashstatic.url"]("img/logo.svg")}


application = HashStatic(app, root=STATIC, prefix="/static/")
