-- Live links of each fetched page, kept by the DbWriter in the transaction that writes
-- the page's links, so that a site's link count is a sum over its pages instead of a
-- count over its links.
ALTER TABLE pages ADD COLUMN link_count INT NOT NULL DEFAULT 0;
UPDATE pages SET link_count = live.n
FROM (SELECT source_url_id, count(*) AS n FROM links WHERE lost_at IS NULL GROUP BY source_url_id) AS live
WHERE pages.url_id = live.source_url_id;
