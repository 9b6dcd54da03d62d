//! Request body framing as RFC 9112 §6.3 defines it, where actix-http departs from it.
//!
//! actix-http reads the body of a request that carries `Upgrade: websocket` (any case, with or
//! without `Connection: Upgrade`), and of a `CONNECT` without `Content-Length`, until the
//! connection closes, whatever `Content-Length` says (`PayloadLength::UpgradeWebSocket` in its
//! HTTP/1 decoder). A handler that waits for the end of such a body waits for the body timeout.
//! No route of this service upgrades the connection, so [`middleware`] frames such a body
//! again the way RFC 9112 §6.3 says a request body is framed: `Content-Length` bytes, or none
//! without it. The connection closes after the answer, since what the client sends beyond
//! that body cannot be read as a next request.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, RequestHead, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use actix_web::http::{ConnectionType, Method, Version};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::StreamExt;

/// Whether actix-http reads this request's body until the connection closes: it carries an
/// `Upgrade: websocket` field, or is a `CONNECT` without `Content-Length`, and is not chunked.
#[must_use]
pub fn read_until_close(head: &RequestHead) -> bool {
    let chunked = head.version == Version::HTTP_11
        && head
            .headers
            .get(TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    let websocket =
        head.headers.get_all(UPGRADE).any(|v| v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket")));
    let connect = head.method == Method::CONNECT && !head.headers.contains_key(CONTENT_LENGTH);
    !chunked && (websocket || connect)
}

/// The body length RFC 9112 §6.3 gives a request that is not chunked: its `Content-Length`
/// (actix-http has already refused an invalid or repeated one), else zero.
fn framed_length(head: &RequestHead) -> u64 {
    head.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// The first `length` bytes of `payload`, then its end. A payload that ends sooner is
/// [`PayloadError::Incomplete`].
fn first_bytes(payload: Payload, length: u64) -> Payload {
    let stream = futures_util::stream::unfold((payload, length), |(mut payload, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        match payload.next().await {
            Some(Ok(mut chunk)) => {
                let keep = usize::try_from(remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
                let chunk: Bytes = chunk.split_to(keep);
                let left = remaining - chunk.len() as u64;
                Some((Ok(chunk), (payload, left)))
            }
            Some(Err(e)) => Some((Err(e), (payload, 0))),
            None => Some((Err(PayloadError::Incomplete(None)), (payload, 0))),
        }
    });
    Payload::Stream { payload: Box::pin(stream) }
}

/// The middleware (for `actix_web::middleware::from_fn`): reframes the body of a request that
/// actix-http would read until the connection closes, and closes the connection after its
/// answer. Other requests pass untouched.
///
/// # Errors
/// Whatever the inner service returns.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !read_until_close(req.head()) {
        return next.call(req).await;
    }
    let length = framed_length(req.head());
    let payload = req.parts_mut().1.take();
    req.set_payload(first_bytes(payload, length));
    let mut response = next.call(req).await?;
    response.response_mut().head_mut().set_connection_type(ConnectionType::Close);
    Ok(response)
}
