//! Request extractors of the console: they pick the language, check the session and
//! render pages with the headers that every console page carries.

use std::future::{ready, Ready};
use std::time::SystemTime;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::i18n::{self, Lang};
use super::session::{self, Session};
use super::templates::{ErrorPage, Frame, LangOption};
use super::ConsoleState;

/// Name of the cookie that keeps the chosen language.
const LANG_COOKIE: &str = "lang";

/// Choose the language of a request as a `Visitor` would, for a response made before a
/// handler runs.
pub fn request_lang(req: &HttpRequest) -> Lang {
    choose_lang(req, &query_pairs(req)).0
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

/// Choose the language of a request from its `lang` query parameter, its `lang` cookie and
/// its `Accept-Language` header. Also returns whether the query chose a language that the
/// cookie does not contain yet, so that the response sets the cookie.
fn choose_lang(req: &HttpRequest, query: &[(String, String)]) -> (Lang, bool) {
    let query_lang = query.iter().find(|(name, _)| name == "lang").map(|(_, value)| value.as_str());
    let cookie = req.cookie(LANG_COOKIE);
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    let lang = i18n::negotiate(query_lang, cookie.as_ref().map(Cookie::value), accept);
    let remember =
        query_lang.and_then(Lang::from_tag).is_some() && cookie.as_ref().map(Cookie::value) != Some(lang.code());
    (lang, remember)
}

/// Headers of every console page: the pages carry CSRF tokens, so no cache keeps them, and
/// the policy allows only the console's own scripts and styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A visitor who may see the console: logged in when `ADMIN_TOKEN` is set, anyone
/// otherwise. Extracting it redirects to the login page when a login is needed.
pub struct Visitor {
    pub lang: Lang,
    pub state: web::Data<ConsoleState>,
    session: Session,
    guest: Guest,
}

/// A visitor of the login page, who need not have a session.
pub struct Guest {
    pub lang: Lang,
    pub state: web::Data<ConsoleState>,
    pub session: Option<Session>,
    cookies: Vec<Cookie<'static>>,
    path: String,
    query: Vec<(String, String)>,
    secure: bool,
}

impl FromRequest for Guest {
    type Error = ConsoleError;
    type Future = Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Guest::from_request_sync(req))
    }
}

impl Guest {
    fn from_request_sync(req: &HttpRequest) -> Result<Self, ConsoleError> {
        let state = req.app_data::<web::Data<ConsoleState>>().cloned().ok_or_else(|| {
            log::error!("the console's state is not registered; mount it with Console::configure");
            ConsoleError::page(Lang::En, StatusCode::INTERNAL_SERVER_ERROR, "error.internal")
        })?;
        let query = query_pairs(req);
        let (lang, remember_lang) = choose_lang(req, &query);
        let secure = req.connection_info().scheme() == "https";

        let mut cookies = Vec::new();
        if remember_lang {
            cookies.push(
                Cookie::build(LANG_COOKIE, lang.code())
                    .path("/console")
                    .same_site(SameSite::Lax)
                    .secure(secure)
                    .max_age(CookieDuration::days(365))
                    .finish(),
            );
        }
        let session =
            req.cookie(session::COOKIE_NAME).and_then(|cookie| state.keys.verify(cookie.value(), SystemTime::now()));
        Ok(Guest { lang, state, session, cookies, path: req.path().to_string(), query, secure })
    }

    /// Start a session and remember to send its cookie with the response.
    pub fn start_session(&mut self) -> Session {
        let session = self.state.keys.issue(SystemTime::now());
        self.cookies.push(session_cookie(session.cookie_value(&self.state.keys), self.secure));
        session
    }

    /// Remember to remove the session cookie with the response.
    pub fn end_session(&mut self) {
        let mut cookie = session_cookie(String::new(), self.secure);
        cookie.make_removal();
        self.cookies.push(cookie);
    }

    /// Build a `303 See Other` to a path of the console, with this visitor's cookies.
    pub fn redirect(&self, location: &str) -> HttpResponse {
        let mut response = HttpResponse::SeeOther();
        response.insert_header((header::LOCATION, location.to_string()));
        for cookie in &self.cookies {
            response.cookie(cookie.clone());
        }
        response.finish()
    }

    /// Build the page frame of a visitor without a session: no logout button, no CSRF token.
    pub fn frame(&self, section: &'static str) -> Frame {
        frame(self.lang, section, None, false, &self.path, &self.query)
    }

    pub fn render(&self, status: StatusCode, page: &impl Template) -> HttpResponse {
        render(self.lang, &self.cookies, status, page)
    }
}

impl FromRequest for Visitor {
    type Error = ConsoleError;
    type Future = Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Guest::from_request_sync(req).and_then(|guest| Visitor::admit(guest, req)))
    }
}

impl Visitor {
    fn admit(mut guest: Guest, req: &HttpRequest) -> Result<Visitor, ConsoleError> {
        let session = match guest.session.take() {
            Some(session) => session,
            None if guest.state.admin_token.is_some() => {
                let next = match req.query_string() {
                    "" => req.path().to_string(),
                    query => format!("{}?{query}", req.path()),
                };
                return Err(ConsoleError::LoginRequired { next });
            }
            // Without a token everyone may use the console, but forms still need a
            // session for their CSRF tokens.
            None => guest.start_session(),
        };
        Ok(Visitor { lang: guest.lang, state: guest.state.clone(), session, guest })
    }

    /// Return the visitor as a guest, whose session may end, for logout.
    pub fn into_guest(self) -> Guest {
        self.guest
    }

    /// Return the session of this visitor, for logout.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Build the frame every page template extends: navigation, language switch, CSRF token.
    pub fn frame(&self, section: &'static str) -> Frame {
        let csrf = self.state.keys.csrf_token(&self.session);
        let guest = &self.guest;
        frame(self.lang, section, Some(csrf), self.state.admin_token.is_some(), &guest.path, &guest.query)
    }

    /// Reject a form whose CSRF token does not belong to this visitor's session.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), ConsoleError> {
        if self.state.keys.check_csrf(&self.session, submitted.unwrap_or_default()) {
            Ok(())
        } else {
            log::warn!("console form to {} rejected: missing or invalid CSRF token", self.guest.path);
            Err(ConsoleError::page(self.lang, StatusCode::FORBIDDEN, "error.csrf"))
        }
    }

    pub fn render(&self, status: StatusCode, page: &impl Template) -> HttpResponse {
        self.guest.render(status, page)
    }

    /// Build a `303 See Other` to a path of the console, with this visitor's cookies.
    pub fn redirect(&self, location: &str) -> HttpResponse {
        self.guest.redirect(location)
    }

    /// Log a failed database query with the path and return the error page for it.
    pub fn database_error(&self, error: sqlx::Error) -> ConsoleError {
        log::error!("console page {} failed on the database: {error}", self.guest.path);
        ConsoleError::page(self.lang, StatusCode::SERVICE_UNAVAILABLE, "error.database")
    }

    /// Build an error page with a status and the string under `key`.
    pub fn error(&self, status: StatusCode, key: &'static str) -> ConsoleError {
        ConsoleError::page(self.lang, status, key)
    }
}

fn session_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(session::COOKIE_NAME, value)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

fn frame(
    lang: Lang,
    section: &'static str,
    csrf: Option<String>,
    show_logout: bool,
    path: &str,
    query: &[(String, String)],
) -> Frame {
    let languages = Lang::ALL
        .into_iter()
        .map(|option| {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in query.iter().filter(|(name, _)| name != "lang") {
                serializer.append_pair(name, value);
            }
            serializer.append_pair("lang", option.code());
            LangOption {
                code: option.code(),
                label: option.native_name(),
                href: format!("{path}?{}", serializer.finish()),
                current: option == lang,
            }
        })
        .collect();
    Frame { lang, section, csrf: csrf.unwrap_or_default(), show_logout, languages }
}

fn render(lang: Lang, cookies: &[Cookie<'static>], status: StatusCode, page: &impl Template) -> HttpResponse {
    let html = match page.render() {
        Ok(html) => html,
        Err(error) => {
            log::error!("rendering a console page failed: {error}");
            return HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(lang.text("error.internal"));
        }
    };
    let mut response = HttpResponse::build(status);
    add_page_headers(&mut response);
    for cookie in cookies {
        response.cookie(cookie.clone());
    }
    response.content_type("text/html; charset=utf-8").body(html)
}

fn add_page_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"));
}

/// Reason a console request did not get its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// The visitor has no session while `ADMIN_TOKEN` is set; `next` is where to return.
    LoginRequired { next: String },
    /// An error page with a status and the string under `key`.
    Page { lang: Lang, status: StatusCode, key: &'static str },
}

impl ConsoleError {
    pub fn page(lang: Lang, status: StatusCode, key: &'static str) -> Self {
        ConsoleError::Page { lang, status, key }
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::LoginRequired { next } => write!(f, "login required for {next}"),
            ConsoleError::Page { status, key, .. } => write!(f, "{status}: {}", Lang::En.text(key)),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::LoginRequired { next } => {
                let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
                HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/console/login?{query}"))).finish()
            }
            ConsoleError::Page { lang, status, key } => {
                let page = ErrorPage {
                    frame: frame(*lang, "", None, false, "/console/", &[]),
                    status: status.as_u16(),
                    message: lang.text(key).to_string(),
                };
                render(*lang, &[], *status, &page)
            }
        }
    }
}

/// Add the page headers to a response made outside `render`, such as a JSON response.
pub fn with_page_headers(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    add_page_headers(&mut response);
    response
}
