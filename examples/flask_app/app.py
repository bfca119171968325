"""Flask behind HashStatic: ``cd examples/flask_app && flask --app app run``."""

from pathlib import Path

from flask import Flask, jsonify, render_template, request

from hashstatic import HashStatic

STATIC = Path(__file__).parent.parent / "site"
app = Flask(__name__, static_folder=STATIC, static_url_path="/static")
# Wrap the WSGI callable, not the Flask object: routes, `flask run` and tests keep working.
app.wsgi_app = HashStatic(app.wsgi_app, root=app.static_folder, prefix="/static/")


@app.template_global()
def hashed_url(path: str) -> str:
    # For places the middleware does not rewrite: script text, JSON, e-mails.
    return request.environ["hashstatic.url"](path)


@app.get("/")
def index() -> str:
    return render_template("index.html")


@app.get("/api/assets")
def assets():
    return jsonify(logo=hashed_url("img/logo.svg"), script=hashed_url("js/app.js"))
