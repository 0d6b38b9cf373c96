-- The registrable domain of each URL's host (public suffix list), for domain-level
-- backlinks, referring domains and domain rank. Filled by the DbWriter for new URLs and
-- by `open-ahrefs migrate` for older rows.
ALTER TABLE urls ADD COLUMN domain TEXT;
CREATE INDEX urls_domain ON urls (domain);

CREATE INDEX links_source ON links (source_url_id);
CREATE INDEX pages_redirect ON pages (redirect_url_id) WHERE redirect_url_id IS NOT NULL;

-- Link rank, recomputed as a whole: PageRank over followed links, scaled to 0..100.
CREATE TABLE url_rank (
    url_id   BIGINT PRIMARY KEY REFERENCES urls (id),
    pagerank DOUBLE PRECISION NOT NULL,
    score    DOUBLE PRECISION NOT NULL
);
CREATE TABLE domain_rank (
    domain   TEXT PRIMARY KEY,
    pagerank DOUBLE PRECISION NOT NULL,
    score    DOUBLE PRECISION NOT NULL
);
CREATE TABLE rank_runs (
    id          BIGSERIAL PRIMARY KEY,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    urls        BIGINT NOT NULL,
    domains     BIGINT NOT NULL,
    iterations  INT NOT NULL
);
