//! The web app: trunk's build of `frontend/` (the `--web-dir`, normally `frontend/dist`), served with an SPA
//! fallback, cache rules that fit trunk's hashed file names, and a Content-Security-Policy that allows exactly
//! the inline scripts `index.html` holds.
//!
//! - `GET /`, `/index.html` and every path outside `/api/` and the health routes that names no file get
//!   `index.html`, so deep links (`/runs/01J…`) work. A missing *asset* (a name with an extension, asked for
//!   by something other than a page navigation) stays a 404, so a stale script never receives HTML.
//! - Files come from tower-http's `ServeDir`, which refuses `..` and anything outside the directory, with a
//!   precompressed `.br`/`.gz` sibling when there is one and the client accepts it. Hashed names
//!   (`name-<hash>.ext`, trunk's default) are cached for a year; everything else (`index.html`, `sw.js`,
//!   `manifest.webmanifest`, icons) is revalidated on every use (`no-cache`).
//! - `index.html` is read at start-up and again whenever it changes on disk (a rebuild); its policy lists the
//!   SHA-256 of each inline `<script>` (trunk's wasm loader), so `'unsafe-inline'` is never needed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use agentfarm_shared::api::routes;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

use crate::error::AppError;

/// `Cache-Control` of files whose name carries a content hash: they never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: keep it, but ask the server before each use.
const REVALIDATE: &str = "no-cache";

/// A built web app on disk, ready to serve.
pub struct WebApp {
    dir: PathBuf,
    files: ServeDir,
    page: RwLock<Arc<Page>>,
}

/// `index.html` as served: its bytes, the policy made for them, and when the file was last changed.
struct Page {
    modified: Option<SystemTime>,
    html: Bytes,
    csp: HeaderValue,
    etag: HeaderValue,
}

impl WebApp {
    /// Opens the web app in `dir`, which must hold an `index.html`.
    pub async fn open(dir: &Path) -> std::io::Result<WebApp> {
        let page = load_page(&dir.join("index.html")).await?;
        let files = ServeDir::new(dir)
            .append_index_html_on_directories(false)
            .precompressed_br()
            .precompressed_gzip();
        Ok(WebApp {
            dir: dir.to_path_buf(),
            files,
            page: RwLock::new(Arc::new(page)),
        })
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Content-Security-Policy sent with `index.html` as it is now.
    pub fn content_security_policy(&self) -> String {
        let page = self.page.read().unwrap_or_else(PoisonError::into_inner);
        page.csp.to_str().unwrap_or_default().to_owned()
    }

    /// `index.html`, reloaded first if the file changed since it was last read.
    async fn page(&self) -> Arc<Page> {
        let current = Arc::clone(&self.page.read().unwrap_or_else(PoisonError::into_inner));
        let path = self.dir.join("index.html");
        let modified = tokio::fs::metadata(&path).await.and_then(|m| m.modified()).ok();
        if modified.is_none() || modified == current.modified {
            return current;
        }
        match load_page(&path).await {
            Ok(page) => {
                tracing::info!(csp = ?page.csp, "index.html changed; reloaded");
                let page = Arc::new(page);
                *self.page.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&page);
                page
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot reload index.html; serving the copy read before");
                current
            }
        }
    }
}

async fn load_page(path: &Path) -> std::io::Result<Page> {
    let modified = tokio::fs::metadata(path).await?.modified().ok();
    let html = tokio::fs::read(path).await?;
    let text = String::from_utf8_lossy(&html);
    let csp = HeaderValue::from_str(&content_security_policy(&text)).map_err(std::io::Error::other)?;
    let digest = Sha256::digest(&html);
    let etag =
        HeaderValue::from_str(&format!("\"{}\"", hex(&digest[..12]))).map_err(std::io::Error::other)?;
    Ok(Page {
        modified,
        html: Bytes::from(html),
        csp,
        etag,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The routes of the web app: everything the API router does not answer.
pub fn router(web: Arc<WebApp>) -> Router {
    Router::new().fallback(serve).with_state(web)
}

/// Any path the API does not route.
async fn serve(State(web): State<Arc<WebApp>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if is_server_path(&path) {
        return AppError::NotFound(path).into_response();
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    if path == "/" || path == "/index.html" {
        return page_response(&*web.page().await, request.headers());
    }
    let wants_page = accepts_html(request.headers()) || !file_name(&path).contains('.');
    let headers = request.headers().clone();
    let response = match web.files.clone().try_call(request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(path, error = %err, "cannot read a web app file");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if response.status() == StatusCode::NOT_FOUND {
        return if wants_page {
            page_response(&*web.page().await, &headers)
        } else {
            AppError::NotFound(path).into_response()
        };
    }
    let mut response = response.map(Body::new);
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let name = file_name(&path);
        let headers = response.headers_mut();
        let cache = if is_hashed(name) { IMMUTABLE } else { REVALIDATE };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if name == "sw.js" {
            // A worker gets its policy from its own script's response, not from the page.
            headers.insert(header::CONTENT_SECURITY_POLICY, web.page().await.csp.clone());
        }
    }
    security_headers(response.headers_mut());
    response
}

/// `index.html` with its policy; `304` when the client's copy is current.
fn page_response(page: &Page, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim().trim_start_matches("W/") == page.etag.to_str().unwrap_or_default())
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(page.html.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    headers.insert(header::ETAG, page.etag.clone());
    security_headers(headers);
    response
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Paths that belong to the server, never to the app: unknown ones are the API's JSON 404 (the proxies' too,
/// on the app's port when they have one of their own, and `/metrics`, which only the metrics listener serves).
fn is_server_path(path: &str) -> bool {
    [
        "/api",
        routes::PROXIES,
        routes::HEALTHZ,
        routes::READYZ,
        routes::METRICS,
    ]
    .iter()
    .any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether the request is a page navigation (browsers send `Accept: text/html,…` for those).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.split(',').any(|range| {
                range
                    .split(';')
                    .next()
                    .is_some_and(|mime| mime.trim() == "text/html")
            })
        })
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// trunk's hashed names: `stem-<hex hash>.ext`, the wasm as `stem-<hex hash>_bg.wasm`.
fn is_hashed(name: &str) -> bool {
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(base, hash)| {
        !base.is_empty()
            && (8..=16).contains(&hash.len())
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The policy for a page: same-origin everything, wasm compilation, and each inline `<script>` (and
/// `<style>`) of `html` by its SHA-256.
pub fn content_security_policy(html: &str) -> String {
    let hashes = |tag| {
        inline_elements(html, tag)
            .iter()
            .map(|text| format!(" 'sha256-{}'", BASE64.encode(Sha256::digest(text.as_bytes()))))
            .collect::<String>()
    };
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; style-src 'self'{styles}; \
         img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'",
        scripts = hashes("script"),
        styles = hashes("style"),
    )
}

/// The text of every `<tag>` element of `html` that has no `src` attribute, as the browser hashes it: exactly
/// what stands between the tags, with line endings made `\n` (HTML's input normalisation). Comments are
/// skipped. Enough HTML for trunk's output and hand-written pages; not a general parser.
fn inline_elements(html: &str, tag: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut found = Vec::new();
    let mut at = 0;
    while at < lower.len() {
        let next_tag = lower[at..].find(&open).map(|i| at + i);
        let next_comment = lower[at..].find("<!--").map(|i| at + i);
        match (next_tag, next_comment) {
            (_, Some(comment)) if next_tag.is_none_or(|t| comment < t) => {
                at = lower[comment + 4..]
                    .find("-->")
                    .map_or(lower.len(), |end| comment + 4 + end + 3);
            }
            (Some(start), _) => {
                let after_name = start + open.len();
                let boundary = lower[after_name..].chars().next();
                if !boundary.is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/') {
                    at = after_name;
                    continue;
                }
                let Some(tag_len) = opening_tag_len(&lower[after_name..]) else {
                    break;
                };
                let attributes = &lower[after_name..after_name + tag_len - 1];
                let body_start = after_name + tag_len;
                let body_end = lower[body_start..]
                    .find(&close)
                    .map_or(lower.len(), |i| body_start + i);
                if !has_attribute(attributes, "src") {
                    found.push(
                        html[body_start..body_end]
                            .replace("\r\n", "\n")
                            .replace('\r', "\n"),
                    );
                }
                at = body_end;
            }
            _ => break,
        }
    }
    found
}

/// Length of the rest of an opening tag up to and including its `>`, skipping quoted attribute values.
fn opening_tag_len(rest: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Whether a tag's attribute text (lowercase) has attribute `name`.
fn has_attribute(attributes: &str, name: &str) -> bool {
    let bytes = attributes.as_bytes();
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() || bytes[i] == b'/' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_whitespace() || matches!(bytes[i], b'=' | b'/')) {
            i += 1;
        }
        if &attributes[start..i] == name {
            return true;
        }
        i = skip_space(i);
        if bytes.get(i) == Some(&b'=') {
            i = skip_space(i + 1);
            match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != quote {
                        i += 1;
                    }
                    i += 1;
                }
                _ => {
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    /// The inline script of [`INDEX`]; its SHA-256 computed independently
    /// (`printf … | openssl dgst -sha256 -binary | base64`).
    const SCRIPT: &str =
        "\nimport init from '/app-0123456789abcdef.js';\ninit('/app-0123456789abcdef_bg.wasm');\n";
    const SCRIPT_HASH: &str = "'sha256-nZ/oyQPIIHPIhsgXvJmk9AkpjaO7VUviFrKAwndAsZc='";
    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn index() -> String {
        format!(
            "<!DOCTYPE html><html><head>\
             <!-- <script>not a script</script> -->\
             <link rel=\"manifest\" href=\"/manifest.webmanifest\">\
             <script src=\"/register-sw.js\" defer></script>\
             <script type=\"module\">{SCRIPT}</script></head><body></body></html>"
        )
    }

    /// A web dir inside a temp dir that also holds a secret next to it, outside the web dir.
    async fn web_dir() -> (tempfile::TempDir, Router) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("secret.txt"), "TOP SECRET").unwrap();
        let dist = root.path().join("dist");
        std::fs::create_dir_all(dist.join("icons")).unwrap();
        std::fs::write(dist.join("index.html"), index()).unwrap();
        std::fs::write(dist.join("app-0123456789abcdef_bg.wasm"), WASM).unwrap();
        std::fs::write(dist.join("app-0123456789abcdef_bg.wasm.br"), b"brotli bytes").unwrap();
        std::fs::write(dist.join("app-0123456789abcdef.js"), "export default 1;").unwrap();
        std::fs::write(dist.join("style-89abcdef01234567.css"), "body{}").unwrap();
        std::fs::write(dist.join("sw.js"), "self.addEventListener('fetch', () => {});").unwrap();
        std::fs::write(dist.join("register-sw.js"), "navigator.serviceWorker;").unwrap();
        std::fs::write(dist.join("manifest.webmanifest"), "{}").unwrap();
        std::fs::write(dist.join("icons/icon-192.png"), b"\x89PNG").unwrap();
        let web = WebApp::open(&dist).await.unwrap();
        (root, router(Arc::new(web)))
    }

    async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn the_page_and_the_spa_fallback() {
        let (_root, app) = web_dir().await;
        let html = "text/html,application/xhtml+xml,*/*;q=0.8";
        for (path, accept) in [
            ("/", html),
            ("/index.html", ""),
            ("/runs/01JABCDEF", html),
            ("/runs/01JABCDEF", "*/*"),
            ("/configs/hello/edit", ""),
            ("/icons/", html),
            ("/icons", ""),
            ("/a.route.with.dots", html),
        ] {
            let (status, headers, body) = get(&app, path, &[("accept", accept)]).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(body, index().as_bytes(), "{path}");
            assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
            assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
            assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
            assert!(header(&headers, "content-security-policy").contains(SCRIPT_HASH));
        }
        // A missing asset fetched by a script is a 404, never HTML a worker could cache as code.
        let (status, headers, _) = get(&app, "/app-fedcba9876543210.js", &[("accept", "*/*")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(header(&headers, "content-type").starts_with("application/json"));
    }

    #[tokio::test]
    async fn server_paths_keep_the_json_404() {
        let (_root, app) = web_dir().await;
        for path in [
            "/api/x",
            "/api",
            "/api/",
            "/healthz/x",
            "/readyz/deeper/still",
            "/proxy/git/octo/app.git/info/refs",
            "/metrics",
        ] {
            let (status, headers, body) = get(&app, path, &[("accept", "text/html")]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(
                header(&headers, "content-type").starts_with("application/json"),
                "{path}"
            );
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], "not_found", "{path}");
        }
        // Only whole segments count: `/apix` is an app route.
        let (status, _, body) = get(&app, "/apix", &[]).await;
        assert_eq!((status, body), (StatusCode::OK, index().into_bytes()));
    }

    #[tokio::test]
    async fn content_types_and_cache_headers() {
        let (_root, app) = web_dir().await;
        for (path, content_type, cache) in [
            ("/app-0123456789abcdef_bg.wasm", "application/wasm", IMMUTABLE),
            ("/app-0123456789abcdef.js", "javascript", IMMUTABLE),
            ("/style-89abcdef01234567.css", "text/css", IMMUTABLE),
            ("/sw.js", "javascript", REVALIDATE),
            ("/register-sw.js", "javascript", REVALIDATE),
            ("/manifest.webmanifest", "application/manifest+json", REVALIDATE),
            ("/icons/icon-192.png", "image/png", REVALIDATE),
        ] {
            let (status, headers, _) = get(&app, path, &[]).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                header(&headers, "content-type").contains(content_type),
                "{path}: {headers:?}"
            );
            assert_eq!(header(&headers, "cache-control"), cache, "{path}");
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "{path}");
        }
        let (_, headers, _) = get(&app, "/sw.js", &[]).await;
        assert!(header(&headers, "content-security-policy").starts_with("default-src 'self'"));
    }

    #[tokio::test]
    async fn precompressed_siblings_when_accepted() {
        let (_root, app) = web_dir().await;
        let path = "/app-0123456789abcdef_bg.wasm";
        let (_, headers, body) = get(&app, path, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(body, b"brotli bytes");
        assert_eq!(header(&headers, "content-encoding"), "br");
        assert_eq!(header(&headers, "content-type"), "application/wasm");
        assert_eq!(header(&headers, "vary"), "accept-encoding");
        let (_, headers, body) = get(&app, path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(body, WASM, "no .gz sibling: the plain file");
        assert_eq!(header(&headers, "content-encoding"), "");
    }

    #[tokio::test]
    async fn the_page_revalidates_with_its_etag() {
        let (_root, app) = web_dir().await;
        let (_, headers, _) = get(&app, "/", &[]).await;
        let etag = header(&headers, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        let (status, headers, body) = get(&app, "/", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert!(header(&headers, "content-security-policy").contains(SCRIPT_HASH));
        let (status, _, _) = get(&app, "/", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn only_reads() {
        let (_root, app) = web_dir().await;
        let request = Request::post("/").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn nothing_outside_the_web_dir() {
        let (_root, app) = web_dir().await;
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/icons/../../secret.txt",
            "/icons/..%2f..%2fsecret.txt",
            "/..%5csecret.txt",
            "//secret.txt",
        ] {
            for accept in ["*/*", "text/html"] {
                let (status, _, body) = get(&app, path, &[("accept", accept)]).await;
                assert!(
                    !String::from_utf8_lossy(&body).contains("TOP SECRET"),
                    "{path} leaked the file outside the web dir"
                );
                assert!(
                    status == StatusCode::NOT_FOUND || body == index().as_bytes(),
                    "{path}: {status}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_rebuilt_index_is_picked_up() {
        let (root, app) = web_dir().await;
        let index = root.path().join("dist/index.html");
        let file = std::fs::File::options().write(true).open(&index).unwrap();
        let html = "<!doctype html><script type=module>run()</script>";
        std::fs::write(&index, html).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let (_, headers, body) = get(&app, "/", &[]).await;
        assert_eq!(body, html.as_bytes());
        let csp = header(&headers, "content-security-policy");
        assert!(!csp.contains(SCRIPT_HASH));
        let expected = BASE64.encode(Sha256::digest(b"run()"));
        assert!(csp.contains(&format!("'sha256-{expected}'")), "{csp}");
    }

    #[test]
    fn the_policy_hashes_each_inline_script() {
        let csp = content_security_policy(&index());
        assert_eq!(
            csp,
            format!(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {SCRIPT_HASH}; style-src 'self'; \
                 img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; \
                 base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
            )
        );
        // CRLF is hashed as the browser sees it (LF); inline styles get hashes too; `src` scripts, comments
        // and look-alike tags do not.
        let html = "<SCRIPT>a\r\nb</SCRIPT><scripts>x</scripts><script\tsrc='/x.js'></script>\
                    <script data-x=\"src\">c</script><style media='x>y'>p{}</style><!-- <style>q</style> -->";
        assert_eq!(inline_elements(html, "script"), ["a\nb", "c"]);
        assert_eq!(inline_elements(html, "style"), ["p{}"]);
        let csp = content_security_policy(html);
        assert!(csp.contains(&format!("'sha256-{}'", BASE64.encode(Sha256::digest(b"a\nb")))));
        assert!(csp.contains(&format!(
            "style-src 'self' 'sha256-{}'",
            BASE64.encode(Sha256::digest(b"p{}"))
        )));
    }

    #[test]
    fn attributes() {
        assert!(has_attribute(" src=\"/a.js\" defer", "src"));
        assert!(has_attribute(" defer src=/a.js", "src"));
        assert!(!has_attribute(" data-src=\"x\"", "src"));
        assert!(!has_attribute(" type=\"module\" data-x='src'", "src"));
        assert!(!has_attribute(" alt=src", "src"));
    }

    #[test]
    fn hashed_names() {
        for name in [
            "agentfarm-frontend-5f0c2b6a8e1d4c3b.js",
            "agentfarm-frontend-5f0c2b6a8e1d4c3b_bg.wasm",
            "style-0123abcd.css",
        ] {
            assert!(is_hashed(name), "{name}");
        }
        for name in [
            "sw.js",
            "manifest.webmanifest",
            "icon-192.png",
            "maskable-512.png",
            "register-sw.js",
            "index.html",
            "-0123456789abcdef.js",
            "app-0123456789ABCDEF.js",
            "app-0123456789abcdef",
        ] {
            assert!(!is_hashed(name), "{name}");
        }
    }
}
