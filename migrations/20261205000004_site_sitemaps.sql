-- The progress of a site counts its fetched pages without its sitemaps, which are few, so
-- that one pass over the site's pages does without a join to urls.
CREATE INDEX urls_site_sitemaps ON urls (site_id) WHERE kind = 'sitemap';
