//! Sitemap parsing (sitemaps.org protocol): `<urlset>` and `<sitemapindex>` documents,
//! plain or gzip-compressed.

use std::io::Read;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Most URLs read from one sitemap, the protocol's limit.
pub const MAX_SITEMAP_URLS: usize = 50_000;

/// Largest sitemap read after decompression, the protocol's limit (50 MiB).
pub const MAX_SITEMAP_BYTES: u64 = 50 * 1024 * 1024;

/// The URLs a sitemap lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// `<url><loc>` entries: pages.
    pub pages: Vec<String>,
    /// `<sitemap><loc>` entries of a sitemap index: more sitemaps.
    pub sitemaps: Vec<String>,
    /// Entries past [`MAX_SITEMAP_URLS`], counted and not listed.
    pub truncated: usize,
}

/// Why a sitemap could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SitemapError {
    #[error("gzip data is invalid: {0}")]
    Gzip(std::io::Error),
    #[error("the decompressed sitemap is larger than {MAX_SITEMAP_BYTES} bytes")]
    TooLarge,
    #[error("invalid XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
}

/// Parse a sitemap body, decompressing it first when it starts with the gzip magic bytes.
pub fn parse(body: &[u8]) -> Result<Sitemap, SitemapError> {
    let decompressed;
    let xml = if body.starts_with(&[0x1f, 0x8b]) {
        let mut buffer = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_SITEMAP_BYTES + 1)
            .read_to_end(&mut buffer)
            .map_err(SitemapError::Gzip)?;
        if buffer.len() as u64 > MAX_SITEMAP_BYTES {
            return Err(SitemapError::TooLarge);
        }
        decompressed = buffer;
        decompressed.as_slice()
    } else {
        body
    };

    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut sitemap = Sitemap::default();
    let mut parents: Vec<Vec<u8>> = Vec::new();
    // The text of the open `<loc>`, which quick-xml reports in pieces: text, entity and
    // character references, and CDATA.
    let mut loc: Option<String> = None;
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|e| SitemapError::Xml { position: reader.buffer_position(), message: e.to_string() })?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_vec();
                if name == b"loc" {
                    loc = Some(String::new());
                }
                parents.push(name);
            }
            Event::Text(text) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&text.decode().unwrap_or_default());
                }
            }
            Event::CData(data) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(loc) = loc.as_mut() {
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) => loc.push(c),
                        _ => {
                            let name = reference.decode().unwrap_or_default();
                            loc.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap_or_default());
                        }
                    }
                }
            }
            Event::End(_) => {
                let closed = parents.pop();
                if closed.as_deref() != Some(b"loc".as_slice()) {
                    continue;
                }
                let Some(text) = loc.take() else { continue };
                let text = text.trim().to_string();
                let container = parents.last().map(Vec::as_slice);
                let full = sitemap.pages.len() + sitemap.sitemaps.len() >= MAX_SITEMAP_URLS;
                let list = match container {
                    Some(b"url") => &mut sitemap.pages,
                    Some(b"sitemap") => &mut sitemap.sitemaps,
                    _ => continue,
                };
                if full {
                    sitemap.truncated += 1;
                } else if !text.is_empty() {
                    list.push(text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    Ok(sitemap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlset_lists_pages() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc>http://example.com/a?x=1&amp;y=2</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc> http://example.com/b </loc></url>
            </urlset>"#;
        let sitemap = parse(xml).unwrap();
        assert_eq!(sitemap.pages, ["http://example.com/a?x=1&y=2", "http://example.com/b"]);
        assert!(sitemap.sitemaps.is_empty());
    }

    #[test]
    fn index_lists_sitemaps() {
        let xml = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <sitemap><loc>http://example.com/s1.xml.gz</loc></sitemap>
            </sitemapindex>"#;
        let sitemap = parse(xml).unwrap();
        assert_eq!(sitemap.sitemaps, ["http://example.com/s1.xml.gz"]);
        assert!(sitemap.pages.is_empty());
    }

    #[test]
    fn gzip_body_is_decompressed() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"<urlset><url><loc>http://example.com/z</loc></url></urlset>").unwrap();
        let sitemap = parse(&encoder.finish().unwrap()).unwrap();
        assert_eq!(sitemap.pages, ["http://example.com/z"]);
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(matches!(parse(b"<urlset><url><loc>x</url>"), Err(SitemapError::Xml { .. })));
    }

    #[test]
    fn broken_gzip_is_an_error() {
        assert!(matches!(parse(&[0x1f, 0x8b, 0, 1, 2]), Err(SitemapError::Gzip(_))));
    }
}
