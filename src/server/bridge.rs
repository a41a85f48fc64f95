//! One request: hyper's head and body become a Rocket request, Rocket dispatches it,
//! and its response goes back to hyper. This is what Rocket's own server does
//! (`Request::from_hyp`, `Rocket::send_response`), through the public local client,
//! with two bounds of its own: at most [`MAX_COOKIES`] cookies are parsed, and the body
//! is read (at most one byte past Rocket's largest data limit, with no stall longer than
//! `header_read_timeout` and all of it within `body_read_timeout` of its first byte)
//! before dispatch. Methods are case-sensitive (`get` is no `GET`). The dispatch runs
//! under a [`presence`](crate::support::presence) watch, so work for a client that has
//! closed its connection is not started.

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
use hyper::header::{
    HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST,
};
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

type ResponseBody = UnsyncBoxBody<Bytes, io::Error>;

/// Serves one request of a connection. An error closes the connection (the body
/// stalled or broke, or the response could not be built).
pub(super) async fn handle(
    server: Arc<Server>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
    busy: Busy,
) -> Result<hyper::Response<Tracked>, io::Error> {
    let (parts, body) = req.into_parts();
    let Some(method) = known_method(parts.method.as_str()) else {
        let answer = refusal(
            rocket::http::Status::BadRequest,
            "This HTTP method is not supported.",
            parts.uri.path(),
        );
        return Ok(answer.map(|body| Tracked::new(body, busy)));
    };
    let limits = server.limits;
    let times = BodyTimes {
        stall: limits.header_read_timeout,
        total: limits.body_read_timeout,
    };
    let data = match read_body(body, limits.max_body, times).await? {
        Body::Complete(data) => data,
        Body::Late => {
            let answer = refusal(
                rocket::http::Status::RequestTimeout,
                "The request body took too long to arrive.",
                parts.uri.path(),
            );
            return Ok(answer.map(|body| Tracked::new(body, busy)));
        }
    };
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

/// A method as RFC 9110 §9.1 reads it: case-sensitive. Rocket's parser ignores case,
/// so `get` would be served as `GET`; a method not written exactly as Rocket writes it
/// is one it does not know.
fn known_method(name: &str) -> Option<Method> {
    Method::from_str(name).ok().filter(|m| m.as_str() == name)
}

/// How long a request body may take: `stall` between two frames, `total` from its
/// first byte to its last.
#[derive(Debug, Clone, Copy)]
struct BodyTimes {
    stall: Duration,
    total: Duration,
}

/// A request body as read before dispatch.
enum Body {
    /// Its bytes (at most the limit asked for).
    Complete(Vec<u8>),
    /// Not complete within `BodyTimes::total` of its first byte (answered `408`).
    Late,
}

/// Reads at most `max` bytes of the body. An error (the connection closes) when it
/// stalls for `times.stall`; `Body::Late` when it still is not complete
/// `times.total` after its first byte, however steadily it trickles.
async fn read_body(mut body: Incoming, max: usize, times: BodyTimes) -> io::Result<Body> {
    use tokio::time::{timeout, Instant};
    let mut data = Vec::new();
    let mut deadline: Option<Instant> = None;
    while data.len() < max {
        let wait = match deadline {
            Some(d) if Instant::now() >= d => return Ok(Body::Late),
            Some(d) => times.stall.min(d - Instant::now()),
            None => times.stall,
        };
        let frame = match timeout(wait, body.frame()).await {
            Ok(frame) => frame,
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(Body::Late),
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "the request body stalled");
                return Err(e);
            }
        };
        let Some(frame) = frame else { break };
        deadline.get_or_insert_with(|| Instant::now() + times.total);
        if let Ok(chunk) = frame.map_err(io::Error::other)?.into_data() {
            let room = max - data.len();
            data.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    Ok(Body::Complete(data))
}

/// Rocket's response as hyper's: status, headers, `Content-Length` when the size is
/// known (as Rocket sets it), and the body in one piece or streamed.
async fn respond(
    mut response: LocalResponse<'_>,
    tx: oneshot::Sender<hyper::Response<ResponseBody>>,
) {
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
    tx: oneshot::Sender<hyper::Response<ResponseBody>>,
    head: hyper::http::response::Builder,
    body: ResponseBody,
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

fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What the loop answers itself, before Rocket sees the request: a method Rocket does
/// not know (it cannot even represent the request), 400; a body past its deadline, 408
/// and the connection closed. From the same table as every other error
/// (`crate::http::error`), in JSON under `/api`.
fn refusal(
    status: rocket::http::Status,
    message: &'static str,
    path: &str,
) -> hyper::Response<ResponseBody> {
    let answer = Answer::new(status).message(message);
    let (kind, text) = if is_api_path(path) {
        let json = serde_json::json!({ "error": answer.code, "error_description": answer.message });
        ("application/json", json.to_string())
    } else {
        (
            "text/plain; charset=utf-8",
            format!("{status}: {}\n", answer.message),
        )
    };
    let mut response = hyper::Response::new(full(text));
    *response.status_mut() = StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if status.code == 408 {
        // The rest of the body is never read: the connection cannot carry another request.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
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
    body: ResponseBody,
    _busy: Busy,
}

impl Tracked {
    fn new(body: ResponseBody, busy: Busy) -> Tracked {
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
