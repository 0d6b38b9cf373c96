-- Stored URLs to which a shorter path turned up than the one that gave them their depth.
-- The DbWriter queues them in the transaction that finds the shorter path, and the
-- DepthWalker lowers their depths and those of the pages below them in transactions of
-- its own, so that a long walk does not hold up the writes of results. A queued walk
-- outlives a restart of the admin, and a site with queued walks is not done, because a
-- walk may queue again a URL skipped for depth.
CREATE TABLE depth_walks (
    url_id BIGINT PRIMARY KEY,
    site_id BIGINT,
    depth INT NOT NULL
);
CREATE INDEX depth_walks_site ON depth_walks (site_id);
