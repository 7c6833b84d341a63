//! Reading a capture request's body. One over the limit is still read to
//! its end (up to [`DRAIN_BYTES`] more, for at most [`DRAIN_FOR`]) and
//! thrown away before the 413: a server that answers and closes while the
//! client is still sending resets the connection, and the client's send
//! fails before it reads the answer, so an SDK sees a network error (and
//! retries the same body) instead of the 413 that tells it not to.

use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;

/// What may be read and thrown away past the limit before giving up on the
/// client hearing the answer: a sender of more is cut off.
pub const DRAIN_BYTES: usize = 4 * super::parse::MAX_BODY_BYTES;

/// How long a body over the limit is drained for, at most.
pub const DRAIN_FOR: Duration = Duration::from_secs(10);

pub enum Read {
    Body(Bytes),
    /// Over `max` bytes; the rest was drained as far as allowed.
    TooLarge,
    /// The client stopped sending (or sent a malformed chunked body).
    Failed(String),
}

/// Reads `body` up to `max` bytes.
pub async fn read(body: Body, max: usize) -> Read {
    let mut stream = body.into_data_stream();
    let mut data = Vec::new();
    loop {
        match stream.next().await {
            None => return Read::Body(data.into()),
            Some(Err(e)) => return Read::Failed(e.to_string()),
            Some(Ok(chunk)) if data.len() + chunk.len() <= max => data.extend_from_slice(&chunk),
            Some(Ok(chunk)) => {
                drop(data);
                let mut left = DRAIN_BYTES.saturating_sub(chunk.len());
                let drain = async {
                    while let Some(Ok(chunk)) = stream.next().await {
                        let Some(l) = left.checked_sub(chunk.len()) else { break };
                        left = l;
                    }
                };
                let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
                return Read::TooLarge;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole_and_one_over_it_is_refused() {
        let within = read(Body::from(vec![b'x'; 1000]), 1000).await;
        assert!(matches!(within, Read::Body(b) if b.len() == 1000));
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..10).map(|_| Ok(Bytes::from(vec![b'y'; 300]))).collect();
        let over = read(Body::from_stream(futures_util::stream::iter(chunks)), 1000).await;
        assert!(matches!(over, Read::TooLarge));
    }
}
