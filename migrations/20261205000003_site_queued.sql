-- The frontier counts the queued URLs of each site before every lease. Without this index
-- the count read the whole (site_id, state) index, about 15 ms per lease once a site had
-- 50,000 URLs, and the chain of the unstable book's pages paid it on every hop.
CREATE INDEX urls_site_queued ON urls (site_id) WHERE state = 'queued';
