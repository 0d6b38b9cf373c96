-- Robots refusals and crawl-limit guards are URL states, not fetches:
--   blocked: robots.txt disallows the URL (state_reason says so)
--   skipped: a crawl limit or spider-trap guard stopped it (state_reason names which)
ALTER TABLE urls DROP CONSTRAINT urls_state_check;
ALTER TABLE urls ADD CONSTRAINT urls_state_check
    CHECK (state IN ('external', 'pending', 'queued', 'fetched', 'blocked', 'skipped'));
ALTER TABLE urls ADD COLUMN state_reason TEXT;

-- Sitemaps are fetched like pages but read as lists of URLs, and are not pages of the site.
ALTER TABLE urls ADD COLUMN kind TEXT NOT NULL DEFAULT 'page' CHECK (kind IN ('page', 'sitemap'));
ALTER TABLE urls ADD COLUMN in_sitemap BOOLEAN NOT NULL DEFAULT false;

-- How often a URL was put back after a 429, 503 or unavailable robots.txt.
ALTER TABLE urls ADD COLUMN retries INT NOT NULL DEFAULT 0;

-- The URL without its query, for the guard against endless query variants of one path.
ALTER TABLE urls ADD COLUMN path_key TEXT;
CREATE INDEX urls_path_key ON urls (path_key) WHERE path_key IS NOT NULL;

CREATE INDEX urls_site_pending ON urls (site_id, depth, id) WHERE state = 'pending';

-- Pages of the site known so far, kept by the DbWriter for the per-site page limit.
ALTER TABLE sites ADD COLUMN url_count BIGINT NOT NULL DEFAULT 0;
UPDATE sites SET url_count = (SELECT count(*) FROM urls WHERE urls.site_id = sites.id);

ALTER TABLE pages
    ADD COLUMN redirect_kind TEXT CHECK (redirect_kind IN ('http', 'meta_refresh')),
    ADD COLUMN h1_count INT NOT NULL DEFAULT 0,
    ADD COLUMN hreflang JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN images_missing_alt INT NOT NULL DEFAULT 0,
    ADD COLUMN insecure_resources INT NOT NULL DEFAULT 0,
    ADD COLUMN headers JSONB NOT NULL DEFAULT '[]';
UPDATE pages SET redirect_kind = 'http' WHERE redirect_url_id IS NOT NULL;
