//! HTTP tests of the console's login, CSRF checks, language choice and assets. They need
//! no database, because every request here gets its response before a query runs.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App};
use sqlx::postgres::PgPoolOptions;

use super::session::{SessionKeys, COOKIE_NAME};
use super::{Console, ConsoleState};

const TOKEN: &str = "correct horse battery staple";

fn console(admin_token: Option<&str>) -> Console {
    Console {
        state: web::Data::new(ConsoleState {
            admin_token: admin_token.map(str::to_string),
            url_policy: Default::default(),
            keys: SessionKeys::random(),
        }),
    }
}

/// A pool that never connects; a handler that reached the database would fail.
fn unreachable_pool() -> web::Data<sqlx::PgPool> {
    web::Data::new(PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap())
}

macro_rules! app {
    ($console:expr) => {{
        let console = $console.clone();
        test::init_service(App::new().app_data(unreachable_pool()).configure(|cfg| console.configure(cfg))).await
    }};
}

fn set_cookie<'a>(response: &'a actix_web::dev::ServiceResponse, name: &str) -> Option<Cookie<'a>> {
    response.response().cookies().find(|cookie| cookie.name() == name)
}

fn location(response: &actix_web::dev::ServiceResponse) -> String {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn body_text(response: actix_web::dev::ServiceResponse) -> String {
    String::from_utf8(test::read_body(response).await.to_vec()).unwrap()
}

#[actix_web::test]
async fn root_redirects_to_console() {
    let app = app!(console(None));
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/console/");
}

#[actix_web::test]
async fn pages_require_login_with_token() {
    let app = app!(console(Some(TOKEN)));
    let response = test::call_service(&app, test::TestRequest::get().uri("/console/sites/3?x=1").to_request()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console/login?next=%2Fconsole%2Fsites%2F3%3Fx%3D1");

    let progress = test::TestRequest::get().uri("/console/sites/3/progress.json").to_request();
    let response = test::call_service(&app, progress).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "the progress JSON is behind the login too");
}

#[actix_web::test]
async fn login_rejects_wrong_token() {
    let app = app!(console(Some(TOKEN)));
    let request = test::TestRequest::post()
        .uri("/console/login")
        .set_form([("token", "wrong"), ("next", "/console/")])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&response, COOKIE_NAME).is_none(), "a failed login must not start a session");
    let html = body_text(response).await;
    assert!(html.contains("role=\"alert\""), "the login page shows the error: {html}");
}

#[actix_web::test]
async fn login_sets_strict_session_cookie() {
    let app = app!(console(Some(TOKEN)));
    let request = test::TestRequest::post()
        .uri("/console/login")
        .set_form([("token", TOKEN), ("next", "/console/backlinks")])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console/backlinks");

    let cookie = set_cookie(&response, COOKIE_NAME).expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.path(), Some("/console"));
    assert!(cookie.max_age().is_none(), "a session cookie ends with the browser");
    assert!(cookie.expires().is_none(), "a session cookie ends with the browser");
}

#[actix_web::test]
async fn login_redirect_stays_in_console() {
    let app = app!(console(Some(TOKEN)));
    let request = test::TestRequest::post()
        .uri("/console/login")
        .set_form([("token", TOKEN), ("next", "https://evil.example/")])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(location(&response), "/console/");
}

/// Log in and return the session cookie with the CSRF token of its forms.
macro_rules! logged_in {
    ($app:expr, $console:expr) => {{
        let request = test::TestRequest::post().uri("/console/login").set_form([("token", TOKEN)]).to_request();
        let response = test::call_service($app, request).await;
        let cookie = set_cookie(&response, COOKIE_NAME).expect("session cookie").into_owned();
        let session = $console.state.keys.verify(cookie.value(), std::time::SystemTime::now()).expect("valid session");
        let csrf = $console.state.keys.csrf_token(&session);
        (cookie, csrf)
    }};
}

#[actix_web::test]
async fn state_changes_require_csrf_token() {
    let console = console(Some(TOKEN));
    let app = app!(console);
    let (cookie, csrf) = logged_in!(&app, console);

    let forms: [(&str, Vec<(&str, &str)>); 3] = [
        ("/console/sites", vec![("url", "http://127.0.0.1:9/")]),
        ("/console/sites/1/recrawl", vec![]),
        ("/console/logout", vec![]),
    ];
    for (uri, fields) in forms {
        let request = test::TestRequest::post().uri(uri).cookie(cookie.clone()).set_form(fields.clone()).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri} without a CSRF token");

        let mut wrong = fields.clone();
        wrong.push(("csrf", "00"));
        let request = test::TestRequest::post().uri(uri).cookie(cookie.clone()).set_form(wrong).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri} with a wrong CSRF token");
    }

    let other_console = self::console(Some(TOKEN));
    let other_app = app!(other_console);
    let (_, other_csrf) = logged_in!(&other_app, other_console);
    let request = test::TestRequest::post()
        .uri("/console/logout")
        .cookie(cookie.clone())
        .set_form([("csrf", other_csrf.as_str())])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "a token of another session");

    let request = test::TestRequest::post()
        .uri("/console/logout")
        .cookie(cookie)
        .set_form([("csrf", csrf.as_str())])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "logout with the right token");
}

#[actix_web::test]
async fn logout_revokes_session() {
    let console = console(Some(TOKEN));
    let app = app!(console);
    let (cookie, csrf) = logged_in!(&app, console);

    let request = test::TestRequest::post()
        .uri("/console/logout")
        .cookie(cookie.clone())
        .set_form([("csrf", csrf.as_str())])
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(location(&response), "/console/login");
    let removal = set_cookie(&response, COOKIE_NAME).expect("removal cookie");
    assert_eq!(removal.value(), "");

    let request = test::TestRequest::get().uri("/console/backlinks").cookie(cookie).to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "the old cookie no longer logs in");
}

#[actix_web::test]
async fn open_console_issues_session_for_csrf() {
    let app = app!(console(None));
    let request = test::TestRequest::get().uri("/console/backlinks").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookie(&response, COOKIE_NAME).is_some(), "forms need a session for their CSRF token");
    let html = body_text(response).await;
    assert!(!html.contains("/console/logout"), "no logout button without a token");

    let request =
        test::TestRequest::post().uri("/console/sites").set_form([("url", "http://127.0.0.1:9/")]).to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no token, no add, even without login");
}

#[actix_web::test]
async fn language_follows_header_query_and_cookie() {
    let app = app!(console(None));
    let request = test::TestRequest::get()
        .uri("/console/backlinks")
        .insert_header((header::ACCEPT_LANGUAGE, "ru-RU,ru;q=0.9,en;q=0.8"))
        .to_request();
    let html = body_text(test::call_service(&app, request).await).await;
    assert!(html.contains("<html lang=\"ru\">"), "Accept-Language ru");
    assert!(html.contains("Обратные ссылки"));

    let request = test::TestRequest::get()
        .uri("/console/backlinks?lang=en")
        .insert_header((header::ACCEPT_LANGUAGE, "ru"))
        .to_request();
    let response = test::call_service(&app, request).await;
    let lang_cookie = set_cookie(&response, "lang").expect("lang cookie").into_owned();
    assert_eq!(lang_cookie.value(), "en");
    assert_eq!(lang_cookie.path(), Some("/console"));
    let html = body_text(response).await;
    assert!(html.contains("<html lang=\"en\">"), "the query parameter wins over the header");

    let request = test::TestRequest::get()
        .uri("/console/backlinks")
        .cookie(Cookie::new("lang", "en"))
        .insert_header((header::ACCEPT_LANGUAGE, "ru"))
        .to_request();
    let html = body_text(test::call_service(&app, request).await).await;
    assert!(html.contains("<html lang=\"en\">"), "the cookie wins over the header");
}

#[actix_web::test]
async fn language_switch_keeps_query() {
    let app = app!(console(None));
    let request = test::TestRequest::get().uri("/console/backlinks?view=a%26b&lang=en").to_request();
    let html = body_text(test::call_service(&app, request).await).await;
    assert!(html.contains("href=\"/console/backlinks?view=a%26b&#38;lang=ru\""), "switch link: {html}");
}

#[actix_web::test]
async fn pages_carry_security_headers() {
    let app = app!(console(None));
    let response = test::call_service(&app, test::TestRequest::get().uri("/console/backlinks").to_request()).await;
    let headers = response.headers();
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
    let policy = headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[actix_web::test]
async fn assets_are_embedded() {
    let app = app!(console(Some(TOKEN)));
    for (path, content_type) in
        [(super::assets::STYLESHEET_PATH, "text/css"), (super::assets::SCRIPT_PATH, "text/javascript")]
    {
        let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path} is served without login");
        let served = response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().to_string();
        assert!(served.starts_with(content_type), "{path}: {served}");
        assert!(!body_text(response).await.is_empty());
    }
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/console/static/other.css").to_request()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn unknown_console_path_is_not_found() {
    let app = app!(console(None));
    let response = test::call_service(&app, test::TestRequest::get().uri("/console/nothing/here").to_request()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = body_text(response).await;
    assert!(html.contains("There is no such page in the console."));
}

/// Check that a form body a browser never sends gets an error page in the visitor's
/// language.
#[actix_web::test]
async fn unreadable_form_gets_page_in_language() {
    let app = app!(console(None));
    for (uri, expected) in [
        ("/console/sites", "application/x-www-form-urlencoded, as a browser sends it"),
        ("/console/sites?lang=ru", "Форму нужно отправлять как application/x-www-form-urlencoded"),
    ] {
        let request = test::TestRequest::post()
            .uri(uri)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(r#"{"url": "http://example.org/"}"#)
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri}");
        let html = body_text(response).await;
        assert!(html.contains(expected), "{uri}: {html}");
    }
}
