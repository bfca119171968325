from pathlib import Path

from hashstatic import HashStatic


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b'<link rel="stylesheet" href="/static/css/site.css"><h1>Hello</h1>']


application = HashStatic(app, root=Path(__file__).parent / "site", prefix="/static/")
