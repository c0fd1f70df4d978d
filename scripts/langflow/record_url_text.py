"""Records what Langflow 1.13's URL component makes of HTML pages, for the
standard library's parity test (`tests/langflow/url-text.json`).

The component's `Text` format is `BeautifulSoup(html, "lxml").get_text()`
(`URLComponent._text_extractor`), then `safe_convert(text, clean_data=True)`,
which for text is `clean_string` (both copied below from `lfx` 1.13.0, so
only BeautifulSoup and lxml need installing; they are what Langflow uses):

    python3 -m venv /tmp/bs && /tmp/bs/bin/pip install beautifulsoup4 lxml
    /tmp/bs/bin/python scripts/langflow/record_url_text.py

The page's metadata is read as `_process_response` reads it: `soup.title.string`,
`<meta name="description">`'s content and `<html lang>`.
"""

import json
import pathlib
import re

from bs4 import BeautifulSoup

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "langflow" / "url-text.json"

PAGES = [
    "<html>\n<head>\n<title>T &amp; U</title>\n<meta name=\"description\" content=\"Desc\">\n"
    "<style>p{color:red}</style>\n<script>var x='<p>';</script>\n</head>\n<body>\n<h1>Hello</h1>\n"
    "<p>World &lt;3 &#169; &copy; &nbsp;x</p>\n<!-- comment -->\n<ul>\n  <li>one</li>\n  <li>two</li>\n</ul>\n"
    "</body>\n</html>",
    "<p>a<b>b</b>c</p><p>d</p>",
    "<!DOCTYPE html><html lang=\"en\"><body><div>   \n\n\n   </div><p>x</p>\n\n\n\n<p>y</p></body></html>",
    "plain text no tags",
    "<pre>  a\n    b</pre><template>hidden</template><noscript>ns</noscript><textarea>ta</textarea>",
    "<p>unclosed <b>bold<p>next &unknown; &amp &#x41;</p>",
    "<title>Only title</title>",
    "<html lang=\"pt\"><head><title>Lisbon <i>guide</i></title></head><body><p>Ol&aacute;\t mundo</p></body></html>",
    "<div>\r\n  <span>crlf</span>\r\n</div>",
    "<body><p>one</p>\n\n\n\n\n<p>two</p><br/><p>three &mdash; &#8220;quoted&#8221;</p></body>",
]


def clean_string(s):
    s = re.sub(r"^\s*$", "", s, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", s)


def record(html):
    soup = BeautifulSoup(html, "lxml")
    meta = soup.find("meta", attrs={"name": "description"})
    html_tag = soup.find("html")
    return {
        "html": html,
        "text": clean_string(BeautifulSoup(html, "lxml").get_text()),
        "title": (soup.title.string or "") if soup.title else "",
        "description": meta["content"] if meta and meta.get("content") else "",
        "language": html_tag["lang"] if html_tag and html_tag.get("lang") else "",
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps([record(p) for p in PAGES], indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
