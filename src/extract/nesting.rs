//! A bound on element nesting, applied before html5ever parses a page.
//!
//! html5ever's tree builder walks the stack of open elements for most start tags (the
//! "has an element in scope" checks of the HTML standard), so a document nested N levels
//! deep costs O(N²). 20,000 nested `<div>`s took 52 s to parse in a debug build, and a
//! hostile page can nest far deeper. This pre-pass drops the start and end tags that would
//! nest deeper than a maximum and keeps their text, so that parsing stays linear.

use std::borrow::Cow;

/// Deepest nesting of counted elements kept. Pages seen in practice stay far below it.
pub const MAX_NESTING: usize = 256;

/// Elements with no end tag, which never nest.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param", "source", "track",
    "wbr",
];

/// Elements that are not counted: those whose end tag the parser implies when a sibling
/// starts (so that counting them would overstate the depth of ordinary pages), and those
/// whose content the extractor reads (`a`, `h1`), which the parser never nests in
/// themselves and which must therefore never be dropped.
const NOT_COUNTED: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup", "rb", "rp", "rt", "rtc", "tr", "td", "th",
    "tbody", "thead", "tfoot", "colgroup", "caption", "a", "h1",
];

/// Elements whose content is text up to their end tag, so a `<` inside is no tag.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"];

/// Return the document with every counted start tag past `max_depth` levels, and its end
/// tag, removed; borrowed unchanged when nothing is that deep.
///
/// The depth is an estimate from the tags alone, without the tree builder's rules. It never
/// counts the elements of [`NOT_COUNTED`] and ignores stray end tags, so the real depth of
/// the kept document can exceed `max_depth`, by a few times at most for nested tables or
/// lists. Inside `<svg>` and `<math>`, self-closing tags do not nest.
pub fn limit_nesting(html: &str, max_depth: usize) -> Cow<'_, str> {
    let bytes = html.as_bytes();
    let mut output: Option<String> = None;
    let mut copied_up_to = 0;
    let mut depth = 0usize;
    let mut foreign_depth = 0usize;
    let mut position = 0;

    while let Some(offset) = bytes[position..].iter().position(|&b| b == b'<') {
        let start = position + offset;
        let Some(tag) = read_tag(bytes, start) else {
            position = start + 1;
            continue;
        };
        position = tag.end;
        match tag.kind {
            TagKind::Skip => continue,
            TagKind::Start if RAW_TEXT.contains(&tag.name.as_str()) => {
                position = find_end_tag(bytes, tag.end, &tag.name);
                continue;
            }
            TagKind::Start if tag.name == "plaintext" => break,
            _ => {}
        }

        if tag.name == "svg" || tag.name == "math" {
            match tag.kind {
                TagKind::Start if !tag.self_closing => foreign_depth += 1,
                TagKind::End => foreign_depth = foreign_depth.saturating_sub(1),
                _ => {}
            }
        }
        let counted = !VOID.contains(&tag.name.as_str())
            && !NOT_COUNTED.contains(&tag.name.as_str())
            && !(tag.self_closing && foreign_depth > 0);
        if !counted {
            continue;
        }

        let drop = match tag.kind {
            TagKind::Start => {
                depth += 1;
                depth > max_depth
            }
            TagKind::End => {
                let drop = depth > max_depth;
                depth = depth.saturating_sub(1);
                drop
            }
            TagKind::Skip => false,
        };
        if drop {
            let kept = output.get_or_insert_with(|| String::with_capacity(html.len()));
            kept.push_str(&html[copied_up_to..start]);
            copied_up_to = tag.end;
        }
    }

    match output {
        None => Cow::Borrowed(html),
        Some(mut kept) => {
            kept.push_str(&html[copied_up_to..]);
            Cow::Owned(kept)
        }
    }
}

#[derive(Debug, PartialEq)]
enum TagKind {
    Start,
    End,
    /// A comment, doctype, processing instruction or CDATA section.
    Skip,
}

struct Tag {
    kind: TagKind,
    /// The tag name in ASCII lowercase.
    name: String,
    self_closing: bool,
    /// The byte after the tag's closing `>`.
    end: usize,
}

/// Read the tag that starts at `start` (a `<`); `None` when the `<` starts no tag.
fn read_tag(bytes: &[u8], start: usize) -> Option<Tag> {
    let rest = &bytes[start + 1..];
    if rest.starts_with(b"!--") {
        let end = find(bytes, start + 4, b"-->").map_or(bytes.len(), |e| e + 3);
        return Some(Tag { kind: TagKind::Skip, name: String::new(), self_closing: false, end });
    }
    if rest.first().is_some_and(|&b| b == b'!' || b == b'?') {
        let end = find(bytes, start + 1, b">").map_or(bytes.len(), |e| e + 1);
        return Some(Tag { kind: TagKind::Skip, name: String::new(), self_closing: false, end });
    }

    let (kind, name_start) =
        if rest.first() == Some(&b'/') { (TagKind::End, start + 2) } else { (TagKind::Start, start + 1) };
    if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let name_end = bytes[name_start..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
        .map_or(bytes.len(), |p| name_start + p);
    let name = String::from_utf8_lossy(&bytes[name_start..name_end]).to_ascii_lowercase();

    // The tag ends at the first `>` outside a quoted attribute value.
    let mut quote: Option<u8> = None;
    let mut index = name_end;
    while index < bytes.len() {
        let b = bytes[index];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => break,
            None => {}
        }
        index += 1;
    }
    let self_closing = index > name_end && bytes[index - 1] == b'/';
    Some(Tag { kind, name, self_closing, end: (index + 1).min(bytes.len()) })
}

/// Find the position of the `<` of `</name` at or after `from`, case-insensitively, or the end.
fn find_end_tag(bytes: &[u8], from: usize, name: &str) -> usize {
    let mut position = from;
    while let Some(found) = find(bytes, position, b"</") {
        let candidate = &bytes[found + 2..];
        if candidate.len() >= name.len() && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return found;
        }
        position = found + 2;
    }
    bytes.len()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_document_is_unchanged() {
        let html = "<html><body><div><p>one<p>two<ul><li>a<li>b</ul></div><a href=x>l</a></body></html>";
        assert!(matches!(limit_nesting(html, 3), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_tags_are_dropped_text_kept() {
        let html = "<div><div><div><div>text</div></div></div></div>";
        assert_eq!(limit_nesting(html, 2), "<div><div>text</div></div>");
    }

    #[test]
    fn links_and_headings_survive_depth() {
        let html = "<div><div><div><h1>Title</h1><a href=\"/x\">x</a></div></div></div>";
        assert_eq!(limit_nesting(html, 1), "<div><h1>Title</h1><a href=\"/x\">x</a></div>");
    }

    #[test]
    fn raw_text_and_comments_are_not_tags() {
        let html = "<script>if (a<b) { x = '<div><div>'; }</script><!-- <div><div> --><div>t</div>";
        assert!(matches!(limit_nesting(html, 1), Cow::Borrowed(_)));
    }

    #[test]
    fn quoted_angle_bracket_stays_in_tag() {
        let html = "<div title=\"a>b\"><div>x</div></div>";
        assert_eq!(limit_nesting(html, 1), "<div title=\"a>b\">x</div>");
    }

    #[test]
    fn self_closing_svg_children_do_not_nest() {
        let paths = "<path d=\"M0\"/>".repeat(10);
        let html = format!("<div><svg>{paths}</svg></div>");
        assert!(matches!(limit_nesting(&html, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn html_self_closing_div_still_nests() {
        assert_eq!(limit_nesting("<div/><div/><div/>", 2), "<div/><div/>");
    }

    #[test]
    fn unterminated_tag_is_kept() {
        assert!(matches!(limit_nesting("<div><di", 5), Cow::Borrowed(_)));
    }
}
