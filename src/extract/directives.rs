//! Robots directives of `<meta name="robots">` and `X-Robots-Tag`, and meta refresh.

/// The indexing directives that apply to a page.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RobotsDirectives {
    pub noindex: bool,
    pub nofollow: bool,
}

impl RobotsDirectives {
    /// Parse a comma-separated directive list such as `noindex, follow`.
    pub fn parse(content: &str) -> Self {
        let mut directives = Self::default();
        for token in content.split(',') {
            directives.add(token);
        }
        directives
    }

    /// Parse the values of `X-Robots-Tag` headers, keeping the directives that apply to
    /// every crawler or to `product_token`. A value may name its crawler first, as in
    /// `googlebot: noindex`; the name then applies until the next one.
    pub fn parse_header<'a>(values: impl IntoIterator<Item = &'a str>, product_token: &str) -> Self {
        let mut directives = Self::default();
        for value in values {
            let mut applies = true;
            for part in value.split(',') {
                let mut token = part.trim();
                if let Some((agent, rest)) = token.split_once(':') {
                    // `unavailable_after: <date>` is a directive, not a crawler name.
                    if !agent.trim().eq_ignore_ascii_case("unavailable_after") {
                        let agent = agent.trim();
                        applies = agent.eq_ignore_ascii_case(product_token) || agent == "*";
                        token = rest.trim();
                    }
                }
                if applies {
                    directives.add(token);
                }
            }
        }
        directives
    }

    fn add(&mut self, token: &str) {
        match token.trim().to_ascii_lowercase().as_str() {
            "noindex" => self.noindex = true,
            "nofollow" => self.nofollow = true,
            "none" => {
                self.noindex = true;
                self.nofollow = true;
            }
            _ => {}
        }
    }
}

/// The target of a `<meta http-equiv="refresh" content="5; url=...">`, as written.
pub fn refresh_target(content: &str) -> Option<String> {
    let (_delay, rest) = content.split_once([';', ','])?;
    let rest = rest.trim_start();
    let value = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("url") {
        rest[3..].trim_start().strip_prefix('=')?.trim()
    } else {
        rest.trim()
    };
    let value = value.trim_matches(['"', '\'']).trim();
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_directives() {
        assert_eq!(RobotsDirectives::parse("noindex, follow"), RobotsDirectives { noindex: true, nofollow: false });
        assert_eq!(RobotsDirectives::parse("NONE"), RobotsDirectives { noindex: true, nofollow: true });
        assert_eq!(RobotsDirectives::parse("index,follow"), RobotsDirectives::default());
    }

    #[test]
    fn header_for_everyone() {
        let parsed = RobotsDirectives::parse_header(["noindex"], "OpenAhrefsBot");
        assert!(parsed.noindex);
    }

    #[test]
    fn header_for_other_crawler_is_ignored() {
        let parsed = RobotsDirectives::parse_header(["googlebot: noindex, nofollow"], "OpenAhrefsBot");
        assert_eq!(parsed, RobotsDirectives::default());
    }

    #[test]
    fn header_for_our_token() {
        let parsed = RobotsDirectives::parse_header(["googlebot: noindex", "openahrefsbot: nofollow"], "OpenAhrefsBot");
        assert_eq!(parsed, RobotsDirectives { noindex: false, nofollow: true });
    }

    #[test]
    fn header_unavailable_after_is_not_an_agent() {
        let parsed =
            RobotsDirectives::parse_header(["unavailable_after: 25 Jun 2010 15:00:00 PST, noindex"], "OpenAhrefsBot");
        assert!(parsed.noindex);
    }

    #[test]
    fn refresh_targets() {
        assert_eq!(refresh_target("0; url=/next.html").as_deref(), Some("/next.html"));
        assert_eq!(refresh_target("5;URL='http://example.com/'").as_deref(), Some("http://example.com/"));
        assert_eq!(refresh_target("3, /other").as_deref(), Some("/other"));
        assert_eq!(refresh_target("30"), None);
    }
}
