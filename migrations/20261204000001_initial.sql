-- Sites are the hosts being crawled; every other URL is only a link target.
CREATE TABLE sites (
    id          BIGSERIAL PRIMARY KEY,
    host        TEXT NOT NULL UNIQUE,
    seed_url    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the frontier sees no URL of the site waiting or in flight; cleared when
    -- new work arrives.
    done_at     TIMESTAMPTZ
);

-- Every URL ever seen, normalized, without fragment.
--   external: a link target outside every crawled site; never fetched
--   pending:  due for a fetch at next_fetch_at
--   queued:   handed to the scrapers, leased until leased_until
--   fetched:  a result is stored; due again at next_fetch_at
CREATE TABLE urls (
    id              BIGSERIAL PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,
    host            TEXT NOT NULL,
    site_id         BIGINT REFERENCES sites (id),
    state           TEXT NOT NULL CHECK (state IN ('external', 'pending', 'queued', 'fetched')),
    depth           INT NOT NULL DEFAULT 0,
    first_seen      TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_fetch_at   TIMESTAMPTZ,
    leased_at       TIMESTAMPTZ,
    leased_until    TIMESTAMPTZ,
    last_fetched_at TIMESTAMPTZ
);
CREATE INDEX urls_host ON urls (host);
CREATE INDEX urls_site_state ON urls (site_id, state);
CREATE INDEX urls_pending ON urls (depth, id) WHERE state = 'pending';
CREATE INDEX urls_queued ON urls (leased_until) WHERE state = 'queued';
CREATE INDEX urls_revisit ON urls (next_fetch_at) WHERE state = 'fetched';

-- The latest fetch of each URL with the page facts.
CREATE TABLE pages (
    url_id           BIGINT PRIMARY KEY REFERENCES urls (id),
    site_id          BIGINT NOT NULL REFERENCES sites (id),
    fetched_at       TIMESTAMPTZ NOT NULL,
    -- NULL when no response was received; error_kind says why.
    status           SMALLINT,
    error_kind       TEXT,
    error_message    TEXT,
    content_type     TEXT,
    title            TEXT,
    h1               TEXT,
    meta_description TEXT,
    canonical        TEXT,
    noindex          BOOLEAN NOT NULL DEFAULT false,
    nofollow         BOOLEAN NOT NULL DEFAULT false,
    redirect_url_id  BIGINT REFERENCES urls (id),
    response_time_ms INT NOT NULL,
    body_bytes       BIGINT,
    links_dropped    INT NOT NULL DEFAULT 0
);
CREATE INDEX pages_site ON pages (site_id, url_id);
CREATE INDEX pages_site_status ON pages (site_id, status, url_id);

-- One row per <a href> element. A link's identity is its source, target, anchor text and
-- its rank among the links of that page with the same target and anchor, so a result
-- delivered twice updates the same rows, and a recrawl that no longer finds a link marks
-- it lost instead of deleting it.
CREATE TABLE links (
    id            BIGSERIAL PRIMARY KEY,
    source_url_id BIGINT NOT NULL REFERENCES urls (id),
    target_url_id BIGINT NOT NULL REFERENCES urls (id),
    anchor_text   TEXT NOT NULL,
    occurrence    INT NOT NULL,
    href          TEXT NOT NULL,
    nofollow      BOOLEAN NOT NULL,
    ugc           BOOLEAN NOT NULL,
    sponsored     BOOLEAN NOT NULL,
    first_seen    TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ NOT NULL,
    lost_at       TIMESTAMPTZ,
    UNIQUE (source_url_id, target_url_id, anchor_text, occurrence)
);
CREATE INDEX links_target ON links (target_url_id);
