//! One request: hyper's head and body become a Rocket request, Rocket dispatches it,
//! and its response goes back to hyper. This is what Rocket's own server does
//! (`Request::from_hyp`, `Rocket::send_response`), through the public local client,
//! with two bounds of its own: at most [`MAX_COOKIES`] cookies are parsed, and the body
//! is read (at most one byte past Rocket's largest data limit, with no stall longer than
//! `header_read_timeout`) before dispatch. The dispatch runs under a
//! [`presence`](crate::support::presence) watch, so work for a client that has closed its
//! connection is not started.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST};
use hyper::http::request::Parts;
use hyper::StatusCode;
use rocket::http::uri::Host;
use rocket::http::{Cookie, Header, Method};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use super::activity::Busy;
use super::shared::Server;
use crate::http::error::{is_api_path, Answer};
use crate::support::presence;

/// Cookies parsed from one request at most; the rest are ignored. Browsers keep at most
/// 180 cookies per domain (Chrome; Firefox and Safari fewer), so no browser sends more.
pub const MAX_COOKIES: usize = 180;

/// Responses of a known size up to this are sent in one piece; larger ones stream.
const BUFFERED: usize = 64 * 1024;
const CHUNK: usize = 16 * 1024;

type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Serves one request of a connection. An error closes the connection (the body
/// stalled or broke, or the response could not be built).
pub(super) async fn handle(
    server: Arc<Server>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
    busy: Busy,
) -> Result<hyper::Response<Tracked>, io::Error> {
    let (parts, body) = req.into_parts();
    let Ok(method) = Method::from_str(parts.method.as_str()) else {
        return Ok(unsupported_method(parts.uri.path()).map(|body| Tracked::new(body, busy)));
    };
    let limits = server.limits;
    let data = read_body(body, limits.max_body, limits.header_read_timeout).await?;
    let (tx, rx) = oneshot::channel();
    // Dropped with this future: hyper drops it when the client closes its connection
    // before the answer, and the dispatch (its own task, as in Rocket) then starts no
    // password hashing for nobody (`crate::support::presence`).
    let (_waiting, presence) = presence::pair();
    // Boxed before it is spawned: Rocket's dispatch future is large (kilobytes), and
    // spawning it unboxed copied all of it three times per request, into the task and
    // through its stages (callgrind: over half the instructions of a 404); a box moves
    // as one pointer.
    tokio::spawn(Box::pin(async move {
        let request = build(&server.client, method, &parts, data, peer);
        let response = presence::watching(presence, request.dispatch()).await;
        respond(response, tx).await;
    }));
    let response = rx
        .await
        .map_err(|_| io::Error::other("no response was produced"))?;
    Ok(response.map(|body| Tracked::new(body, busy)))
}

/// The request as Rocket's server would build it from the same head.
fn build<'c>(
    client: &'c Client,
    method: Method,
    parts: &Parts,
    data: Vec<u8>,
    peer: SocketAddr,
) -> LocalRequest<'c> {
    // An absolute-form target keeps only its path and query, as in Rocket; anything
    // else without a path (`*`, authority-form) fails Rocket's parse and gets its 400.
    let uri = match parts.uri.path_and_query() {
        Some(path) => path.as_str().to_string(),
        None => parts.uri.to_string(),
    };
    let mut request = client.req(method, uri).remote(peer);
    for (name, value) in &parts.headers {
        match std::str::from_utf8(value.as_bytes()) {
            Ok(value) => {
                request.add_header(Header::new(name.as_str().to_string(), value.to_string()))
            }
            Err(_) => tracing::debug!("dropping header {name}: not UTF-8"),
        }
    }
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
    if let Some(host) = host.and_then(|h| Host::parse_owned(h.to_string()).ok()) {
        request.set_host(host);
    }
    if !data.is_empty() {
        request.set_body(data);
    }
    request.cookies(request_cookies(&parts.headers))
}

/// The request's cookies, as Rocket parses them, but no more than [`MAX_COOKIES`]:
/// parsing stops there, so a header of thousands of tiny cookies costs no more than a
/// normal one. Malformed pairs are skipped.
pub fn request_cookies(headers: &HeaderMap) -> Vec<Cookie<'static>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| std::str::from_utf8(value.as_bytes()).ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter_map(|pair| Cookie::parse_encoded(pair).ok())
        .take(MAX_COOKIES)
        .map(Cookie::into_owned)
        .collect()
}

/// Reads at most `max` bytes of the body; an error when it stalls for `stall`.
async fn read_body(mut body: Incoming, max: usize, stall: Duration) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    while data.len() < max {
        let frame = tokio::time::timeout(stall, body.frame())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the request body stalled"))?;
        let Some(frame) = frame else { break };
        if let Ok(chunk) = frame.map_err(io::Error::other)?.into_data() {
            let room = max - data.len();
            data.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    Ok(data)
}

/// Rocket's response as hyper's: status, headers, `Content-Length` when the size is
/// known (as Rocket sets it), and the body in one piece or streamed.
async fn respond(mut response: LocalResponse<'_>, tx: oneshot::Sender<hyper::Response<Body>>) {
    let chunked = response.headers().contains("Transfer-Encoding");
    let length = response.body().preset_size().filter(|_| !chunked);
    let mut head = hyper::Response::builder().status(response.status().code);
    for h in response.headers().iter() {
        let is_length = h.name().as_str().eq_ignore_ascii_case("content-length");
        if !(is_length && (chunked || length.is_some())) {
            head = head.header(h.name().as_str(), h.value());
        }
    }
    if let Some(n) = length {
        head = head.header(CONTENT_LENGTH, n);
    }
    if let Some(n) = length.filter(|n| *n <= BUFFERED) {
        let mut buf = Vec::with_capacity(n);
        match response.read_to_end(&mut buf).await {
            Ok(_) => {
                send_head(tx, head, full(buf));
            }
            Err(e) => tracing::warn!("reading a response body failed: {e}"),
        }
        return;
    }
    let (frames, rx) = mpsc::channel(2);
    if send_head(tx, head, Channel(rx).boxed_unsync()) {
        stream_body(response, frames).await;
    }
}

fn send_head(
    tx: oneshot::Sender<hyper::Response<Body>>,
    head: hyper::http::response::Builder,
    body: Body,
) -> bool {
    match head.body(body) {
        Ok(response) => tx.send(response).is_ok(),
        Err(e) => {
            tracing::warn!("a response could not be sent: {e}");
            false
        }
    }
}

async fn stream_body(
    mut response: LocalResponse<'_>,
    frames: mpsc::Sender<io::Result<Frame<Bytes>>>,
) {
    loop {
        let mut chunk = BytesMut::with_capacity(CHUNK);
        let frame = match response.read_buf(&mut chunk).await {
            Ok(0) => return,
            Ok(_) => Ok(Frame::data(chunk.freeze())),
            Err(e) => Err(e),
        };
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A method Rocket does not know (Rocket cannot even represent the request): 400 from
/// the same table as every other error (`crate::http::error`), in JSON under `/api`.
fn unsupported_method(path: &str) -> hyper::Response<Body> {
    let answer =
        Answer::new(rocket::http::Status::BadRequest).message("This HTTP method is not supported.");
    let (kind, text) = if is_api_path(path) {
        let json = serde_json::json!({ "error": answer.code, "error_description": answer.message });
        ("application/json", json.to_string())
    } else {
        (
            "text/plain; charset=utf-8",
            format!("400 Bad Request: {}\n", answer.message),
        )
    };
    let mut response = hyper::Response::new(full(text));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

/// A streamed response body.
struct Channel(mpsc::Receiver<io::Result<Frame<Bytes>>>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx)
    }
}

/// A response body that keeps its connection marked busy until hyper drops it.
pub(super) struct Tracked {
    body: Body,
    _busy: Busy,
}

impl Tracked {
    fn new(body: Body, busy: Busy) -> Tracked {
        Tracked { body, _busy: busy }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie_headers: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in cookie_headers {
            map.append(COOKIE, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn cookies_are_parsed_like_rocket() {
        let got = request_cookies(&headers(&["a=1; b=%20two ;c=3", "d=4", ";;"]));
        let pairs: Vec<(&str, &str)> = got.iter().map(|c| (c.name(), c.value())).collect();
        assert_eq!(pairs, [("a", "1"), ("b", " two"), ("c", "3"), ("d", "4")]);
    }

    #[test]
    fn parsing_stops_at_the_cookie_cap() {
        let flood: Vec<String> = (0..5000).map(|i| format!("c{i}=v")).collect();
        let got = request_cookies(&headers(&[&flood.join("; ")]));
        assert_eq!(got.len(), MAX_COOKIES);
        assert_eq!(got[0].name(), "c0");
        assert_eq!(got[MAX_COOKIES - 1].name(), format!("c{}", MAX_COOKIES - 1));
    }

    #[test]
    fn malformed_cookies_are_skipped_not_counted() {
        let got = request_cookies(&headers(&["=novalue; noequals; ok=1"]));
        let names: Vec<&str> = got.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["ok"]);
    }
}
