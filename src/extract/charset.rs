//! Decoding a page's bytes to text, following the WHATWG encoding sniffing order.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many bytes the `<meta>` prescan looks at, as in the HTML standard.
const PRESCAN_BYTES: usize = 1024;

/// Decode an HTML body to UTF-8 text.
///
/// The encoding is, in order: a byte order mark, the `charset` of the Content-Type
/// header, a `<meta charset>` or `<meta http-equiv="Content-Type">` in the first 1024
/// bytes, then windows-1252, the WHATWG default for documents of unknown locale. The BOM
/// comes first because browsers, and so search engines, let it win over the header.
/// Bytes invalid in the chosen encoding become U+FFFD.
pub fn decode_html(body: &[u8], content_type: Option<&str>) -> (String, &'static Encoding) {
    let encoding = Encoding::for_bom(body)
        .map(|(encoding, _)| encoding)
        .or_else(|| content_type.and_then(charset_parameter).and_then(|label| Encoding::for_label(label.as_bytes())))
        .or_else(|| prescan_meta(&body[..body.len().min(PRESCAN_BYTES)]))
        .unwrap_or(WINDOWS_1252);
    // A page that declares UTF-16 in ASCII-compatible markup is in fact ASCII-compatible.
    let encoding = if encoding.is_single_byte() || encoding == UTF_8 || Encoding::for_bom(body).is_some() {
        encoding
    } else {
        encoding.output_encoding()
    };
    let (text, used, _had_errors) = encoding.decode(body);
    (text.into_owned(), used)
}

/// The value of a `charset=` parameter, without quotes.
fn charset_parameter(value: &str) -> Option<&str> {
    value.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches(['"', '\'']))
    })
}

/// Find a charset declared by a `<meta>` element in the start of the document.
fn prescan_meta(head: &[u8]) -> Option<&'static Encoding> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<meta") {
        let after = &rest[start + 5..];
        let end = after.find('>').unwrap_or(after.len());
        let tag = &after[..end];
        if let Some(position) = tag.find("charset") {
            let value = tag[position + 7..].trim_start();
            if let Some(value) = value.strip_prefix('=') {
                let value = value.trim_start().trim_start_matches(['"', '\'']);
                let label: String = value
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
                    .collect();
                if let Some(encoding) = Encoding::for_label(label.as_bytes()) {
                    return Some(encoding);
                }
            }
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_charset_decodes_windows_1251() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("<title>Привет</title>");
        let (text, encoding) = decode_html(&bytes, Some("text/html; charset=windows-1251"));
        assert_eq!(encoding.name(), "windows-1251");
        assert!(text.contains("Привет"));
    }

    #[test]
    fn meta_charset_decodes_koi8_r() {
        let (bytes, _, _) = encoding_rs::KOI8_R.encode(r#"<meta charset="koi8-r"><title>Мир</title>"#);
        let (text, encoding) = decode_html(&bytes, Some("text/html"));
        assert_eq!(encoding.name(), "KOI8-R");
        assert!(text.contains("Мир"));
    }

    #[test]
    fn http_equiv_content_type() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251
            .encode(r#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Да</p>"#);
        let (text, _) = decode_html(&bytes, None);
        assert!(text.contains("Да"));
    }

    #[test]
    fn bom_wins_over_header() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice("Ёлка".as_bytes());
        let (text, encoding) = decode_html(&bytes, Some("text/html; charset=iso-8859-1"));
        assert_eq!(encoding, UTF_8);
        assert_eq!(text, "Ёлка");
    }

    #[test]
    fn default_is_windows_1252() {
        let (text, encoding) = decode_html(b"caf\xe9", None);
        assert_eq!(encoding, WINDOWS_1252);
        assert_eq!(text, "café");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (text, _) = decode_html(b"ok \xff\xfe end", Some("text/html; charset=utf-8"));
        assert_eq!(text, "ok \u{FFFD}\u{FFFD} end");
    }
}
