"""Document text from bytes: plain text, Markdown (kept as is: headings guide the chunker), HTML (text of
the page, headings turned into Markdown headings, scripts and styles dropped) and PDF (pypdf's text layer).

Every failure is a ``DocumentError`` naming the document and the problem (empty, not UTF-8, a PDF that
cannot be read or holds no text, too large); the caller turns it into a 400 and writes nothing.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import PurePath

KINDS = ("text", "markdown", "html", "pdf")
_EXT = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_MEDIA = {"text/plain": "text", "text/markdown": "markdown", "text/html": "html", "application/pdf": "pdf"}


class DocumentError(ValueError):
    """A document that cannot be ingested; the message names it and says why."""


def kind_of(name: str, media_type: str | None = None) -> str:
    """The kind of a document from its media type, else its file extension (default ``text``)."""
    if media_type:
        base = media_type.split(";")[0].strip().lower()
        if base in _MEDIA:
            return _MEDIA[base]
    return _EXT.get(PurePath(name).suffix.lower(), "text")


def extract(name: str, data: bytes, kind: str, max_bytes: int) -> str:
    """The text of a document. Raises ``DocumentError``."""
    if kind not in KINDS:
        raise DocumentError(f"{name}: unknown document kind '{kind}' (one of {', '.join(KINDS)})")
    if len(data) > max_bytes:
        raise DocumentError(f"{name}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    if not data.strip():
        raise DocumentError(f"{name}: the document is empty")
    if kind == "pdf":
        text = _pdf(name, data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{name}: not UTF-8 text (byte {exc.start})") from None
        if "\x00" in text:
            raise DocumentError(f"{name}: binary data, not text (use a .pdf name for PDF files)")
        if kind == "html":
            text = html_text(text)
    if not text.strip():
        raise DocumentError(f"{name}: no text found in the document")
    return text


def _pdf(name: str, data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise DocumentError(f"{name}: PDF support needs the pypdf package") from None
    if not data.startswith(b"%PDF"):
        raise DocumentError(f"{name}: not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DocumentError(f"{name}: the PDF cannot be read ({type(exc).__name__}: {exc})") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


class _Text(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
