//! Git smart HTTP: authenticates `/{owner}/{repo}.git/{info/refs,git-upload-pack,git-receive-pack}` and
//! bridges it to `git http-backend` as a CGI (request body streamed to its stdin, its `Status:` and headers
//! parsed from stdout, the rest streamed back).
//!
//! `http-backend` itself inflates `Content-Encoding: gzip` request bodies (it reads `HTTP_CONTENT_ENCODING`),
//! reads to EOF when there is no `CONTENT_LENGTH` (chunked pushes), picks the protocol from
//! `HTTP_GIT_PROTOCOL`, and only enables `receive-pack` when `REMOTE_USER` is set.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};

use crate::auth;
use crate::repos;
use crate::server::Shared;

/// The parts of a git URL path.
#[derive(Debug, PartialEq, Eq)]
struct GitPath<'a> {
    owner: &'a str,
    repo: &'a str,
    /// `info/refs`, `git-upload-pack` or `git-receive-pack`.
    rest: &'a str,
}

/// Splits `/{owner}/{repo}[.git]/{rest}` where rest is a smart-HTTP endpoint.
fn parse_path(path: &str) -> Option<GitPath<'_>> {
    let mut parts = path.strip_prefix('/')?.splitn(3, '/');
    let owner = parts.next()?;
    let repo = parts.next()?;
    let rest = parts.next()?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    matches!(rest, "info/refs" | "git-upload-pack" | "git-receive-pack").then_some(GitPath {
        owner,
        repo,
        rest,
    })
}

/// Whether `path` looks like a git smart-HTTP request (so that it, not the catch-all 404, should answer).
pub(crate) fn is_git_path(path: &str) -> bool {
    parse_path(path).is_some()
}

/// A plain-text response.
fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Handles one git smart-HTTP request.
pub(crate) async fn handle(shared: &Shared, remote: SocketAddr, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(git_path) = parse_path(&path) else {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let Some(user) = auth::basic_user(request.headers(), &shared.token) else {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\""),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "Invalid username or token. Password authentication is not supported for Git operations.\n",
        )
            .into_response();
    };
    if repos::existing_repo(&shared.root, git_path.owner, git_path.repo).is_none() {
        return text(StatusCode::NOT_FOUND, "Repository not found.\n");
    }
    let query = request.uri().query().unwrap_or("").to_owned();
    if git_path.rest == "info/refs" && !query.split('&').any(|pair| pair.starts_with("service=")) {
        return text(
            StatusCode::FORBIDDEN,
            "Please upgrade your git client.\nGitHub no longer supports git over dumb-http.\n",
        );
    }
    let path_info = format!("/{}/{}.git/{}", git_path.owner, git_path.repo, git_path.rest);
    match run_cgi(&shared.root, &path_info, &query, &user, remote, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, path_info, "fake github: git http-backend failed");
            text(StatusCode::BAD_GATEWAY, "git http-backend failed\n")
        }
    }
}

/// Request headers passed to the CGI as `HTTP_*` (all but credentials, the two CGI-proper ones and
/// hop-by-hop/proxy ones).
fn cgi_header_vars(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "authorization"
                    | "content-type"
                    | "content-length"
                    | "connection"
                    | "transfer-encoding"
                    | "proxy"
            ) && !name.as_str().starts_with("proxy-")
        })
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            let name = format!("HTTP_{}", name.as_str().to_ascii_uppercase().replace('-', "_"));
            Some((name, value.to_owned()))
        })
        .collect()
}

/// Runs `git http-backend` for `request` and turns its output into a response.
async fn run_cgi(
    root: &Path,
    path_info: &str,
    query: &str,
    user: &str,
    remote: SocketAddr,
    request: Request,
) -> std::io::Result<Response> {
    let (parts, body) = request.into_parts();
    let header_value = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_SOFTWARE", "agentfarm-fake-github")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("SCRIPT_NAME", "")
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", remote.ip().to_string())
        .env("REMOTE_PORT", remote.port().to_string())
        .env("AUTH_TYPE", "Basic")
        .env("REMOTE_USER", user)
        .envs(cgi_header_vars(&parts.headers))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(content_type) = header_value(header::CONTENT_TYPE) {
        command.env("CONTENT_TYPE", content_type);
    }
    if let Some(length) = header_value(header::CONTENT_LENGTH) {
        command.env("CONTENT_LENGTH", length);
    }
    if let Some(protocol) = header_value(HeaderName::from_static("git-protocol")) {
        command.env("GIT_PROTOCOL", protocol);
    }
    let mut child = command.spawn()?;
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child without pipes"));
    };
    tokio::spawn(feed(body, stdin));
    let path_info = path_info.to_owned();
    tokio::spawn(async move {
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors).await;
        match child.wait().await {
            Ok(status) if status.success() && errors.trim().is_empty() => {}
            Ok(status) => tracing::debug!(%status, errors = errors.trim(), path_info, "git http-backend"),
            Err(error) => tracing::warn!(%error, path_info, "git http-backend: wait"),
        }
    });

    let (head, rest) = read_cgi_head(&mut stdout).await?;
    let (status, headers) = parse_cgi_head(&head)?;
    let mut response = Response::new(Body::from_stream(body_stream(rest, stdout)));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    Ok(response)
}

/// Streams the request body into the CGI's stdin, then closes it. A child that stops reading early (an error
/// answer) just ends the copy.
async fn feed(body: Body, mut stdin: ChildStdin) {
    let mut data = body.into_data_stream();
    while let Some(chunk) = data.next().await {
        let Ok(chunk) = chunk else {
            return;
        };
        if stdin.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

/// Longest CGI header section accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Reads stdout up to the blank line ending the CGI headers: (header text, body bytes already read).
async fn read_cgi_head(stdout: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((end, separator)) = find_head_end(&buffer) {
            let rest = buffer.split_off(end + separator);
            buffer.truncate(end);
            return Ok((String::from_utf8_lossy(&buffer).into_owned(), rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::other("CGI header section too long"));
        }
        let read = stdout.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::other(format!(
                "CGI output ended before its headers: {:?}",
                String::from_utf8_lossy(&buffer)
            )));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Position and length of the first blank line (`\r\n\r\n` or `\n\n`).
fn find_head_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let crlf = buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| (at, 4));
    let lf = buffer
        .windows(2)
        .position(|window| window == b"\n\n")
        .map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The status (`Status:` header, default 200) and the other headers of a CGI response.
fn parse_cgi_head(head: &str) -> std::io::Result<(StatusCode, HeaderMap)> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for line in head.lines().map(str::trim_end).filter(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(std::io::Error::other(format!("bad CGI header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or_else(|| std::io::Error::other(format!("bad CGI status {value:?}")))?;
        } else {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(std::io::Error::other)?;
            let value = HeaderValue::from_str(value).map_err(std::io::Error::other)?;
            headers.append(name, value);
        }
    }
    Ok((status, headers))
}

/// The response body: `first` (read along with the headers), then the rest of stdout.
fn body_stream(
    first: Vec<u8>,
    stdout: ChildStdout,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let first = futures_util::stream::iter((!first.is_empty()).then(|| Ok(Bytes::from(first))));
    let rest = futures_util::stream::unfold(Some(stdout), |stdout| async move {
        let mut stdout = stdout?;
        let mut chunk = vec![0u8; 64 * 1024];
        match stdout.read(&mut chunk).await {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok(Bytes::from(chunk)), Some(stdout)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    first.chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/octo/demo.git/info/refs"),
            Some(GitPath {
                owner: "octo",
                repo: "demo",
                rest: "info/refs"
            })
        );
        assert_eq!(
            parse_path("/octo/demo/git-receive-pack").map(|p| p.repo),
            Some("demo")
        );
        assert!(parse_path("/octo/demo.git/HEAD").is_none());
        assert!(parse_path("/octo/demo.git").is_none());
        assert!(parse_path("/octo/demo/pull/1").is_none());
    }

    #[test]
    fn cgi_head() {
        let (status, headers) =
            parse_cgi_head("Status: 404 Not Found\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980")
                .unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["content-type"], "text/plain");
        let (status, _) = parse_cgi_head("Content-Type: application/x-git-upload-pack-result").unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(parse_cgi_head("garbage").is_err());
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"A: b\r\n\r\nbody"), Some((4, 4)));
        assert_eq!(find_head_end(b"A: b\n\nbody\r\n\r\n"), Some((4, 2)));
        assert_eq!(find_head_end(b"A: b\r\n"), None);
    }

    #[tokio::test]
    async fn reads_head_and_keeps_body() {
        let mut input: &[u8] = b"Status: 200 OK\r\nX: y\r\n\r\n0008NAK\n";
        let (head, rest) = read_cgi_head(&mut input).await.unwrap();
        assert_eq!(head, "Status: 200 OK\r\nX: y");
        assert_eq!(rest, b"0008NAK\n");
    }

    #[test]
    fn header_vars() {
        let mut headers = HeaderMap::new();
        headers.insert("git-protocol", HeaderValue::from_static("version=2"));
        headers.insert("content-encoding", HeaderValue::from_static("gzip"));
        headers.insert("authorization", HeaderValue::from_static("Basic eDp5"));
        headers.insert("proxy", HeaderValue::from_static("http://evil"));
        let mut vars = cgi_header_vars(&headers);
        vars.sort();
        assert_eq!(
            vars,
            vec![
                ("HTTP_CONTENT_ENCODING".to_owned(), "gzip".to_owned()),
                ("HTTP_GIT_PROTOCOL".to_owned(), "version=2".to_owned()),
            ]
        );
    }
}
