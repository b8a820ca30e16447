"""The report's page templates, style sheets and scripts: files in reducer/pages/, package data
(pyproject.toml), read with importlib.resources and inlined into each page when it is built, so
every page stays one self-contained file that works offline.

The interactive map is plain JavaScript on a canvas (pages/map.js, no library): the page needs
pan, zoom, hover, search, colouring by a column, a legend, box selection and its CSV download
for at most 50,000 points, which Bokeh would bring as roughly a megabyte of inlined library
per page and a runtime dependency, Plotly as over 3 MB. Here a page is its data plus ~25 kB,
and its controls are real form elements (keyboard, screen readers, tests). `window.reducerMap`
lets scripts and the browser tests find a point on the screen and see what is shown.

Pages are Jinja2 templates with autoescape on: every id, label and reason is escaped unless a
template says otherwise; data for scripts goes through `script_json`.
"""

import functools
import json
from importlib import resources
from typing import Any

import jinja2
import markupsafe

PAGES = "pages"  # reducer/pages/: the templates (*.html), scripts (*.js) and style sheets (*.css)


@functools.lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of reducer/pages/<name>, as installed (a wheel carries it as package data)."""
    return resources.files("reducer").joinpath(PAGES, name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> element early, whatever the ids and labels hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    """Templates from reducer/pages/, escaped by default; `asset(name)` inlines a script or style
    sheet (trusted, our own files), `script_json` a page's data."""
    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda name: asset(name)),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["asset"] = lambda name: markupsafe.Markup(asset(name))
    env.filters["script_json"] = lambda value: markupsafe.Markup(script_json(value))
    return env


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)
