"""Crawl one site with Scrapy and print what it fetched as one JSON line.

Usage: python scrapy_crawl.py SEED_URL CONCURRENCY TIMEOUT_SECONDS

The spider follows every <a href> on the seed's host and port, at any depth, and ignores
robots.txt and politeness delays, as the other crawlers of scripts/benchmark.sh do. Like
Open Ahrefs it follows neither HTTP redirects nor meta refreshes and keeps responses of
every status, so a page is any response received. It only fetches pages and extracts their links; nothing is stored.
"""

import json
import sys
import time
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import TextResponse


def site_key(url: str) -> str:
    """Return the host:port of an http(s) URL, the scope of the crawl."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.hostname}:{port}"


class SiteSpider(scrapy.Spider):
    """Follows every link on the seed's host and port.

    Scrapy's allow_domains and OffsiteMiddleware compare domain names and do not match a
    bare IP address with a port, so the spider filters by host:port itself.
    """

    name = "site"

    def __init__(self, seed: str, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [seed]
        self.site = site_key(seed)
        self.pages = 0
        self.pages_2xx = 0
        self.links_extracted = 0
        self.started = time.monotonic()

    def parse(self, response):
        self.pages += 1
        if 200 <= response.status < 300:
            self.pages_2xx += 1
        if not isinstance(response, TextResponse):
            return
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href.strip())
            if not url.startswith(("http://", "https://")):
                continue
            self.links_extracted += 1
            if site_key(url) == self.site:
                yield scrapy.Request(url, callback=self.parse)

    def closed(self, reason):
        stats = self.crawler.stats
        print(
            json.dumps(
                {
                    "crawler": "scrapy",
                    "pages": self.pages,
                    "pages_2xx": self.pages_2xx,
                    "links_extracted": self.links_extracted,
                    "requests": stats.get_value("downloader/request_count", 0),
                    "seconds": round(time.monotonic() - self.started, 3),
                    "finish_reason": reason,
                }
            ),
            flush=True,
        )


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} SEED_URL CONCURRENCY TIMEOUT_SECONDS")
    seed, concurrency, timeout_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    process = CrawlerProcess(
        settings={
            "ROBOTSTXT_OBEY": False,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "DEPTH_LIMIT": 0,
            "REDIRECT_ENABLED": False,
            # rustdoc's redirect pages carry <meta http-equiv="refresh">, which this
            # middleware would follow instead of handing the page to parse().
            "METAREFRESH_ENABLED": False,
            "RETRY_ENABLED": False,
            "HTTPERROR_ALLOW_ALL": True,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
            "CLOSESPIDER_TIMEOUT": timeout_seconds,
            "LOG_LEVEL": "INFO",
        }
    )
    process.crawl(SiteSpider, seed=seed)
    process.start()


if __name__ == "__main__":
    main()
