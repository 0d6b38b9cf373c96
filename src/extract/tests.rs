use super::*;

fn page_url() -> Url {
    Url::parse("http://example.com/dir/page.html").unwrap()
}

fn extract(html: &str) -> Extracted {
    Extractor::new().extract(&page_url(), html)
}

#[test]
fn facts_from_head_and_body() {
    let page = extract(
        r#"<html><head><title> Hello
        World </title><meta name="Description" content="About  us">
        <link rel="canonical" href="/canonical.html"></head>
        <body><h1>First <em>heading</em></h1><h1>Second</h1></body></html>"#,
    );
    assert_eq!(page.facts.title.as_deref(), Some("Hello World"));
    assert_eq!(page.facts.h1.as_deref(), Some("First heading"));
    assert_eq!(page.facts.meta_description.as_deref(), Some("About us"));
    assert_eq!(page.facts.canonical.as_deref(), Some("http://example.com/canonical.html"));
    assert!(!page.facts.noindex);
    assert!(!page.facts.nofollow);
}

#[test]
fn missing_facts_are_none() {
    let page = extract("<p>no head</p>");
    assert_eq!(page.facts.title, None);
    assert_eq!(page.facts.h1, None);
    assert_eq!(page.facts.meta_description, None);
    assert_eq!(page.facts.canonical, None);
}

#[test]
fn links_resolve_against_base_href() {
    let page = extract(
        r#"<base href="http://cdn.example.org/root/">
        <a href="a.html#frag">A</a><a href="/b">B</a><a href="mailto:x@y">mail</a>
        <a name="anchor-only">no href</a>"#,
    );
    let urls: Vec<&str> = page.links.iter().map(|l| l.url.as_str()).collect();
    assert_eq!(urls, ["http://cdn.example.org/root/a.html", "http://cdn.example.org/b"]);
    assert_eq!(page.links[0].href, "a.html#frag");
}

#[test]
fn rel_kinds_are_kept_apart() {
    let page = extract(
        r#"<a href="/1" rel="NoFollow">1</a><a href="/2" rel="ugc noopener">2</a>
        <a href="/3" rel="sponsored nofollow">3</a><a href="/4">4</a>"#,
    );
    let kinds: Vec<(bool, bool, bool)> = page.links.iter().map(|l| (l.nofollow, l.ugc, l.sponsored)).collect();
    assert_eq!(kinds, [(true, false, false), (false, true, false), (true, false, true), (false, false, false)]);
}

#[test]
fn page_wide_robots_directives() {
    let page = extract(r#"<meta name="robots" content="noindex, follow">"#);
    assert!(page.facts.noindex);
    assert!(!page.facts.nofollow);
    let page = extract(r#"<meta name="googlebot" content="none">"#);
    assert!(page.facts.noindex);
    assert!(page.facts.nofollow);
}

#[test]
fn anchor_text_falls_back_to_image_alt() {
    let page = extract(r#"<a href="/x"><img src="logo.png" alt="Home page"></a><a href="/y">  Spaced   out </a>"#);
    assert_eq!(page.links[0].anchor_text, "Home page");
    assert_eq!(page.links[1].anchor_text, "Spaced out");
}

#[test]
fn inline_markup_does_not_split_words() {
    let page = extract(r#"<a href="/x">Open<b>Ahrefs</b></a>"#);
    assert_eq!(page.links[0].anchor_text, "OpenAhrefs");
}

/// A real page of the Rust book, as rustup installs it.
#[test]
fn rust_book_page_yields_links() {
    let path = rust_book_dir().join("ch01-00-getting-started.html");
    let html = std::fs::read_to_string(&path).unwrap();
    let url = Url::parse("http://127.0.0.1:1/book/ch01-00-getting-started.html").unwrap();
    let page = Extractor::new().extract(&url, &html);
    assert_eq!(page.facts.title.as_deref(), Some("Getting Started - The Rust Programming Language"));
    // The sidebar is built by JavaScript, so the HTML holds only the header and the
    // previous/next links, twice each.
    let urls: Vec<&str> = page.links.iter().map(|l| l.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:1/book/print.html",
            "https://github.com/rust-lang/book",
            "http://127.0.0.1:1/book/ch01-00-getting-started.html",
            "http://127.0.0.1:1/book/ch00-00-introduction.html",
            "http://127.0.0.1:1/book/ch01-01-installation.html",
            "http://127.0.0.1:1/book/ch00-00-introduction.html",
            "http://127.0.0.1:1/book/ch01-01-installation.html",
        ]
    );
    assert_eq!(page.facts.h1.as_deref(), Some("The Rust Programming Language"));
}

fn rust_book_dir() -> std::path::PathBuf {
    let output = std::process::Command::new("rustc").args(["--print", "sysroot"]).output().unwrap();
    let sysroot = String::from_utf8(output.stdout).unwrap();
    let dir = std::path::Path::new(sysroot.trim()).join("share/doc/rust/html/book");
    assert!(dir.is_dir(), "the Rust book is not installed at {}", dir.display());
    dir
}
