-- Live links of each fetched page, kept by the DbWriter in the transaction that writes
-- the page's links, so that a site's link count is a sum over its pages instead of a
-- count over its links.
ALTER TABLE pages ADD COLUMN link_count INT NOT NULL DEFAULT 0;
UPDATE pages SET link_count = live.n
FROM (SELECT source_url_id, count(*) AS n FROM links WHERE lost_at IS NULL GROUP BY source_url_id) AS live
WHERE pages.url_id = live.source_url_id;

-- The foreign keys of links cost two index probes of urls per inserted row and halved the
-- insert rate. They check nothing the code does not ensure: the DbWriter inserts or finds
-- both URLs of every link in the transaction that inserts the link, and no URL is ever
-- deleted.
ALTER TABLE links DROP CONSTRAINT links_source_url_id_fkey;
ALTER TABLE links DROP CONSTRAINT links_target_url_id_fkey;

-- The unique index on (source_url_id, target_url_id, anchor_text, occurrence) serves the
-- lookups by source.
DROP INDEX links_source;
