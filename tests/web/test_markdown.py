"""READMEs and Markdown referrers: CommonMark in, an allow-list of HTML out (``web/markdown.py``)."""

from __future__ import annotations

import pytest

from modelyard.web.markdown import render_markdown


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ("[x](javascript:alert(1))", 'href="javascript'),  # left as text: no link
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "javascript"),
        ('<a href="&#106;avascript:alert(1)">x</a>', "avascript"),
        ('<img src="/ui/static/x.png" onerror="alert(1)">', "onerror"),
        ('<p onclick="alert(1)">x</p>', "onclick"),
        ("<iframe src='https://evil.example'></iframe>", "iframe"),
        ("<style>body{display:none}</style>", "<style"),
        ("<form action='https://evil.example'><input></form>", "<form"),
        ("![t](https://tracker.example/p.png)", "tracker.example"),
        ("![t](//tracker.example/p.png)", "tracker.example"),
        ('<img src="data:image/svg+xml,<svg onload=alert(1)>">', "svg"),
        ("[d](data:text/html,<script>alert(1)</script>)", 'href="data'),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>', "data:"),
        ("<svg><script>alert(1)</script></svg>", "<svg"),
    ],
)
def test_hostile_markdown_is_inert(source: str, forbidden: str) -> None:
    assert forbidden not in render_markdown(source).lower()


def test_what_a_readme_needs_survives() -> None:
    html = render_markdown(
        "# Title\n\nSome **bold** and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```\n\n"
        "[docs](https://docs.example/x) ![logo](/ui/static/logo.png) ![dot](data:image/png;base64,iVBORw0KGgo=)\n"
    )
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<td>1</td>" in html
    assert '<code class="language-python">' in html
    assert 'href="https://docs.example/x"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert 'src="/ui/static/logo.png"' in html and 'src="data:image/png;base64,iVBORw0KGgo="' in html
