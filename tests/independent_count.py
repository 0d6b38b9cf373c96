#!/usr/bin/env python3
"""Count what a crawl of a static folder must find, without the crawler's code.

Walks the folder's HTML files breadth-first from a seed path, the way a crawler confined
to one host would, with Python's own html.parser instead of the crawler's html5ever, and
prints JSON: the URLs fetched, the responses by status class, the <a href> links that
resolve to http(s), and the number of links from other pages pointing at each URL.

The static server of the tests answers 200 for an existing file (index.html for a path
ending in /) and 404 for anything else; this script assumes the same.
"""

import json
import os
import sys
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base = None
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "base" and self.base is None and attrs.get("href") is not None:
            self.base = attrs["href"]
        if tag == "a" and attrs.get("href") is not None:
            self.hrefs.append(attrs["href"])


def resolve(base, href):
    absolute, _fragment = urldefrag(urljoin(base, href.strip()))
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path == "":
        absolute = urlunsplit((parts.scheme, parts.netloc, "/", parts.query, ""))
    return absolute


def local_file(root, url):
    path = unquote(urlsplit(url).path)
    if path.endswith("/"):
        path += "index.html"
    candidate = os.path.normpath(os.path.join(root, path.lstrip("/")))
    if not candidate.startswith(os.path.abspath(root)) or not os.path.isfile(candidate):
        return None
    return candidate


def main():
    root, seed = os.path.abspath(sys.argv[1]), sys.argv[2]
    site = urlsplit(seed).netloc
    seen = {seed}
    queue = deque([seed])
    responses = Counter()
    links = 0
    inlinks = Counter()

    while queue:
        url = queue.popleft()
        path = local_file(root, url)
        if path is None:
            responses["4xx"] += 1
            continue
        responses["2xx"] += 1
        if not path.endswith((".html", ".htm")):
            continue
        parser = LinkParser()
        with open(path, encoding="utf-8", errors="replace") as handle:
            parser.feed(handle.read())
        base = urljoin(url, parser.base) if parser.base else url
        for href in parser.hrefs:
            target = resolve(base, href)
            if target is None:
                continue
            links += 1
            # A page's links to itself are no backlinks of it.
            if target != url:
                inlinks[target] += 1
            if urlsplit(target).netloc == site and target not in seen:
                seen.add(target)
                queue.append(target)

    print(json.dumps({
        "urls_fetched": len(seen),
        "responses": {"2xx": responses["2xx"], "3xx": 0, "4xx": responses["4xx"], "5xx": 0, "error": 0},
        "links": links,
        "inlinks": inlinks,
    }))


if __name__ == "__main__":
    main()
