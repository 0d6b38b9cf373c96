//! Recording the URLs a batch of results discovered: link and redirect targets, sitemap
//! entries and sitemaps, each with the state the crawl limits give it.

use std::borrow::Cow;
use std::collections::HashMap;

use sqlx::{Postgres, Transaction};
use url::Url;

use super::url_cache::{CachedUrl, UrlCache};
use crate::messages::{CrawlResult, FetchOutcome, UrlKind};
use crate::scope::{path_key, CrawlLimits, GuardCounts};

/// A URL found in a batch, before it has an id.
#[derive(Debug, Clone)]
struct Candidate {
    kind: UrlKind,
    depth: i32,
    in_sitemap: bool,
}

/// What the insert of discovered URLs produced.
pub struct Discovered<'a> {
    /// The id of every discovered URL, new or known, by its text as stored.
    pub ids: HashMap<Cow<'a, str>, i64>,
    pub new_urls: u64,
    /// The URLs read from or written to the database, for the cache once the transaction
    /// commits, with the depths this batch leaves them.
    pub to_cache: Vec<(Cow<'a, str>, CachedUrl)>,
    /// New page URLs per site, for [`count_new_pages`].
    pub new_pages: HashMap<i64, i64>,
}

/// Collect every URL the results point at, keeping the smallest depth per URL. A result's
/// depth is the smaller of the one it was leased with and `stored_depth`, which a depth
/// walk may have lowered while the page was fetched. The keys are the URLs as stored,
/// borrowed from the results unless they contained a NUL.
fn candidates<'a>(results: &[&'a CrawlResult], stored_depth: &HashMap<i64, i32>) -> HashMap<Cow<'a, str>, Candidate> {
    let mut found: HashMap<Cow<'a, str>, Candidate> = HashMap::new();
    let mut add = |url: &'a str, kind: UrlKind, depth: i32, in_sitemap: bool| {
        found
            .entry(clean(url))
            .and_modify(|c| {
                c.depth = c.depth.min(depth);
                c.in_sitemap |= in_sitemap;
            })
            .or_insert(Candidate { kind, depth, in_sitemap });
    };
    for result in results {
        let own_depth = stored_depth.get(&result.url_id).map_or(result.depth, |d| result.depth.min(*d));
        let depth = own_depth.saturating_add(1);
        for sitemap in &result.robots_sitemaps {
            add(sitemap, UrlKind::Sitemap, own_depth, false);
        }
        let FetchOutcome::Response(response) = &result.outcome else { continue };
        if let Some(target) = &response.redirect_to {
            add(target, UrlKind::Page, depth, false);
        }
        for link in &response.links {
            add(&link.url, UrlKind::Page, depth, false);
        }
        if let Some(sitemap) = &response.sitemap {
            for page in &sitemap.pages {
                add(page, UrlKind::Page, depth, true);
            }
            for child in &sitemap.sitemaps {
                add(child, UrlKind::Sitemap, own_depth, false);
            }
        }
    }
    found
}

/// Insert the URLs not seen before and return the ids of all of them. The ids of URLs in
/// `cache` come from it, and only the others are looked up. A stored URL reached through
/// a shorter path than its depth gets a depth walk queued.
pub async fn record<'a>(
    tx: &mut Transaction<'_, Postgres>,
    results: &[&'a CrawlResult],
    stored_depth: &HashMap<i64, i32>,
    limits: &CrawlLimits,
    cache: &mut UrlCache,
) -> Result<Discovered<'a>, sqlx::Error> {
    let found = candidates(results, stored_depth);
    if found.is_empty() {
        return Ok(Discovered { ids: HashMap::new(), new_urls: 0, to_cache: Vec::new(), new_pages: HashMap::new() });
    }

    let mut ids: HashMap<Cow<'a, str>, i64> = HashMap::with_capacity(found.len());
    let mut to_cache: Vec<(Cow<'a, str>, CachedUrl)> = Vec::new();
    let mut shallower: Vec<(i64, i32)> = Vec::new();
    let mut uncached: Vec<&str> = Vec::new();
    for (url, candidate) in &found {
        match cache.get(url) {
            Some(cached) => {
                ids.insert(url.clone(), cached.id);
                if candidate.depth < cached.depth {
                    shallower.push((cached.id, candidate.depth));
                    to_cache.push((url.clone(), CachedUrl { id: cached.id, depth: candidate.depth }));
                }
            }
            None => uncached.push(url.as_ref()),
        }
    }

    let known: Vec<(i64, String, i32)> = if uncached.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as("SELECT id, url, depth FROM urls WHERE url = ANY($1)")
            .bind(&uncached)
            .fetch_all(&mut **tx)
            .await?
    };
    for (id, url, depth) in known {
        if let Some((key, candidate)) = found.get_key_value(url.as_str()) {
            ids.insert(key.clone(), id);
            if candidate.depth < depth {
                shallower.push((id, candidate.depth));
            }
            to_cache.push((key.clone(), CachedUrl { id, depth: depth.min(candidate.depth) }));
        }
    }
    super::depth::queue(tx, &shallower).await?;

    let in_sitemap: Vec<i64> =
        found.iter().filter(|(_, c)| c.in_sitemap).filter_map(|(url, _)| ids.get(url).copied()).collect();
    if !in_sitemap.is_empty() {
        sqlx::query("UPDATE urls SET in_sitemap = true WHERE id = ANY($1) AND NOT in_sitemap")
            .bind(&in_sitemap)
            .execute(&mut **tx)
            .await?;
    }

    // Only new URLs are parsed: a stored URL is crawlable already. Sitemap entries are the
    // site owner's word, but still URLs, so they must be http(s) like links.
    let new: Vec<(Url, Candidate)> = found
        .into_iter()
        .filter(|(url, _)| !ids.contains_key(url))
        .filter_map(|(url, candidate)| Url::parse(&url).ok().map(|u| (u, candidate)))
        .filter(|(url, _)| matches!(url.scheme(), "http" | "https"))
        .collect();
    if new.is_empty() {
        return Ok(Discovered { ids, new_urls: 0, to_cache, new_pages: HashMap::new() });
    }
    let rows = classify(tx, new, limits).await?;

    let inserted: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "INSERT INTO urls (url, host, site_id, state, state_reason, kind, depth, in_sitemap, path_key, domain,
                           next_fetch_at)
         SELECT t.url, t.host, t.site_id, t.state, t.reason, t.kind, t.depth, t.in_sitemap, t.path_key, t.domain,
                CASE WHEN t.state = 'pending' THEN now() END
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::int4[],
                     $8::bool[], $9::text[], $10::text[])
              AS t(url, host, site_id, state, reason, kind, depth, in_sitemap, path_key, domain)
         ORDER BY t.url
         ON CONFLICT (url) DO NOTHING
         RETURNING id, url, CASE WHEN kind = 'page' AND state <> 'external' THEN site_id END",
    )
    .bind(&rows.url)
    .bind(&rows.host)
    .bind(&rows.site_id)
    .bind(&rows.state)
    .bind(&rows.reason)
    .bind(&rows.kind)
    .bind(&rows.depth)
    .bind(&rows.in_sitemap)
    .bind(&rows.path_key)
    .bind(&rows.domain)
    .fetch_all(&mut **tx)
    .await?;

    let depth_of: HashMap<&str, i32> = rows.url.iter().map(String::as_str).zip(rows.depth.iter().copied()).collect();
    let mut new_pages: HashMap<i64, i64> = HashMap::new();
    for (id, url, site) in &inserted {
        ids.insert(Cow::Owned(url.clone()), *id);
        if let Some(&depth) = depth_of.get(url.as_str()) {
            to_cache.push((Cow::Owned(url.clone()), CachedUrl { id: *id, depth }));
        }
        if let Some(site) = site {
            *new_pages.entry(*site).or_default() += 1;
        }
    }
    // A URL inserted by a concurrent transaction between the two statements has no id yet.
    let missing: Vec<&str> = rows.url.iter().map(String::as_str).filter(|u| !ids.contains_key(*u)).collect();
    if !missing.is_empty() {
        let late: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, url FROM urls WHERE url = ANY($1)").bind(&missing).fetch_all(&mut **tx).await?;
        ids.extend(late.into_iter().map(|(id, url)| (Cow::Owned(url), id)));
    }
    Ok(Discovered { ids, new_urls: inserted.len() as u64, to_cache, new_pages })
}

/// Add the new page URLs to their sites' counts. `classify` locked these sites' rows when
/// it read the counts, so the update takes no lock of its own and cannot deadlock.
pub async fn count_new_pages(
    tx: &mut Transaction<'_, Postgres>,
    new_pages: &HashMap<i64, i64>,
) -> Result<(), sqlx::Error> {
    if new_pages.is_empty() {
        return Ok(());
    }
    let (sites, added): (Vec<i64>, Vec<i64>) = new_pages.iter().map(|(site, added)| (*site, *added)).unzip();
    sqlx::query(
        "UPDATE sites SET url_count = url_count + t.added
         FROM UNNEST($1::int8[], $2::int8[]) AS t(id, added) WHERE sites.id = t.id",
    )
    .bind(&sites)
    .bind(&added)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The columns of the URLs to insert.
#[derive(Default)]
struct UrlRows {
    url: Vec<String>,
    host: Vec<String>,
    site_id: Vec<Option<i64>>,
    state: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    kind: Vec<&'static str>,
    depth: Vec<i32>,
    in_sitemap: Vec<bool>,
    path_key: Vec<Option<String>>,
    domain: Vec<String>,
}

/// Give each new URL its site and state: external outside every site, otherwise pending
/// unless a crawl limit or trap guard skips it.
async fn classify(
    tx: &mut Transaction<'_, Postgres>,
    mut new: Vec<(Url, Candidate)>,
    limits: &CrawlLimits,
) -> Result<UrlRows, sqlx::Error> {
    // Shallow URLs first, so that a limit keeps the pages closest to the seed.
    new.sort_by(|(a, ca), (b, cb)| ca.depth.cmp(&cb.depth).then_with(|| a.as_str().cmp(b.as_str())));

    // The row lock makes a concurrent writer of the same site wait for this commit before
    // it reads the counts, so that two DbWriter lanes cannot both take a site's last pages.
    // Locking in id order keeps them from deadlocking.
    // NOTE: the lock is held until the whole batch commits, links included, so two lanes
    // writing one site take turns from here (docs/benchmarks.md, "Where the lanes wait").
    // Inserting the new URLs and the site count in a short transaction of their own, before
    // the pages and links, would let them overlap.
    let hosts: Vec<String> = new.iter().map(|(u, _)| crate::url::site_host(u)).collect();
    let sites: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, host, url_count FROM sites WHERE host = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(&hosts)
            .fetch_all(&mut **tx)
            .await?;
    let site_of: HashMap<String, i64> = sites.iter().map(|(id, host, _)| (host.clone(), *id)).collect();

    let keys: Vec<String> = new.iter().filter_map(|(u, _)| path_key(u)).collect();
    let variants: Vec<(String, i64)> = if keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as("SELECT path_key, count(*) FROM urls WHERE path_key = ANY($1) GROUP BY path_key")
            .bind(&keys)
            .fetch_all(&mut **tx)
            .await?
    };
    let mut counts = GuardCounts {
        pages_per_site: sites.iter().map(|(id, _, count)| (*id, *count)).collect(),
        variants_per_path: variants.into_iter().collect(),
    };

    let mut rows = UrlRows::default();
    for ((url, candidate), host) in new.into_iter().zip(hosts) {
        let site = site_of.get(&host).copied();
        let (state, reason) = match (site, candidate.kind) {
            (None, _) => ("external", None),
            (Some(_), UrlKind::Sitemap) => ("pending", None),
            (Some(site), UrlKind::Page) => match limits.check(site, &url, candidate.depth, &mut counts) {
                Ok(()) => ("pending", None),
                Err(skip) => ("skipped", Some(skip.as_str())),
            },
        };
        rows.path_key.push(path_key(&url).map(|k| clean(&k).into_owned()));
        rows.url.push(clean(url.as_str()).into_owned());
        rows.domain.push(crate::url::registrable_domain(&host));
        rows.host.push(host);
        rows.site_id.push(site);
        rows.state.push(state);
        rows.reason.push(reason);
        rows.kind.push(match candidate.kind {
            UrlKind::Page => "page",
            UrlKind::Sitemap => "sitemap",
        });
        rows.depth.push(candidate.depth);
        rows.in_sitemap.push(candidate.in_sitemap);
    }
    Ok(rows)
}

/// PostgreSQL text cannot hold NUL characters, which hostile pages do contain. Borrows the
/// text unless it contains one.
pub fn clean(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Link, PageResponse, SitemapEntries, SCHEMA_VERSION};

    fn result(depth: i32, response: PageResponse) -> CrawlResult {
        CrawlResult {
            schema_version: SCHEMA_VERSION,
            url_id: 1,
            site_id: 1,
            url: "http://a/".into(),
            depth,
            leased_at: chrono::Utc::now(),
            fetched_at: chrono::Utc::now(),
            response_time_ms: 1,
            outcome: FetchOutcome::Response(response),
            robots_sitemaps: vec!["http://a/sitemap-from-robots.xml".into()],
        }
    }

    fn link(url: &str) -> Link {
        Link {
            href: url.into(),
            url: url.into(),
            anchor_text: String::new(),
            nofollow: false,
            ugc: false,
            sponsored: false,
        }
    }

    #[test]
    fn candidates_keep_kind_depth_and_sitemap_flag() {
        let deep = result(3, PageResponse { links: vec![link("http://a/x")], ..PageResponse::default() });
        let shallow = result(
            0,
            PageResponse {
                links: vec![link("http://a/x")],
                redirect_to: Some("http://a/r".into()),
                sitemap: Some(SitemapEntries {
                    pages: vec!["http://a/x".into()],
                    sitemaps: vec!["http://a/child.xml".into()],
                    error: None,
                }),
                ..PageResponse::default()
            },
        );
        let found = candidates(&[&deep, &shallow], &HashMap::new());
        assert_eq!(found["http://a/x"].depth, 1);
        assert!(found["http://a/x"].in_sitemap);
        assert_eq!(found["http://a/r"].kind, UrlKind::Page);
        assert_eq!(found["http://a/child.xml"].kind, UrlKind::Sitemap);
        assert_eq!(found["http://a/sitemap-from-robots.xml"].kind, UrlKind::Sitemap);
    }

    #[test]
    fn candidates_take_smaller_stored_depth() {
        let leased_deep = result(5, PageResponse { links: vec![link("http://a/x")], ..PageResponse::default() });
        let lowered = HashMap::from([(leased_deep.url_id, 1)]);
        assert_eq!(candidates(&[&leased_deep], &lowered)["http://a/x"].depth, 2);
        let raised = HashMap::from([(leased_deep.url_id, 9)]);
        assert_eq!(candidates(&[&leased_deep], &raised)["http://a/x"].depth, 6);
    }
}
