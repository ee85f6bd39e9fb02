//! The download of the whole space, shared by the webmail (`/parametres/export`)
//! and the app (`/api/v1/export`): the archive of `lifecycle::export`
//! streamed into the response body, with a strong ETag of the space's state
//! and byte ranges (RFC 9110 §14: one range, `If-Range` by that ETag; the
//! archive is regenerated and the prefix skipped). Each download or range
//! is audited.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::WebServices;
use crate::lifecycle::export::{self, Exporter, Output};
use crate::store::StoreError;
use crate::store::accounts::Account;

/// Size of the pipe between the export task and the response body.
const PIPE: usize = 64 * 1024;

/// A `Range` header this server serves: one range of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// From an offset to an optional last offset.
    Range(u64, Option<u64>),
    /// The last N octets.
    Suffix(u64),
}

/// Reads `bytes=N-`, `bytes=N-M` or `bytes=-N`; None for anything else
/// (another unit, several ranges, nonsense: the whole archive is sent).
pub fn parse_range(value: &str) -> Option<Wanted> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(Wanted::Suffix);
    }
    let first: u64 = first.parse().ok()?;
    if last.is_empty() {
        return Some(Wanted::Range(first, None));
    }
    let last: u64 = last.parse().ok()?;
    (last >= first).then_some(Wanted::Range(first, Some(last)))
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "export failure");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Le service est momentanément indisponible. Réessayez plus tard.",
    )
        .into_response()
}

/// The response to a download of `account`'s space by its patient; a
/// `HEAD` gets the headers only (nothing made, nothing audited).
pub async fn download(
    s: &WebServices,
    account: &Account,
    method: &Method,
    request: &HeaderMap,
) -> Response {
    match respond(s, account, method == Method::HEAD, request).await {
        Ok(r) => r,
        Err(e) => unavailable(e),
    }
}

async fn respond(
    s: &WebServices,
    account: &Account,
    head: bool,
    request: &HeaderMap,
) -> Result<Response, StoreError> {
    let store = s.store.clone();
    let tag = export::state_tag(&store, account).await?;
    let range = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range)
        .filter(|_| match request.get(header::IF_RANGE) {
            None => true,
            Some(v) => v.as_bytes() == tag.as_bytes(),
        });
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"espace-sante.zip\""),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    let (status, first, last) = match range {
        None => (StatusCode::OK, 0, None),
        Some(wanted) => {
            // The length is known only by making the archive once.
            let total = match export::write(&store, account, Output::counter()).await {
                Ok(out) => out.produced(),
                Err(e) => return Ok(unavailable(e)),
            };
            let (first, last) = match wanted {
                Wanted::Range(first, last) => (
                    first,
                    last.map_or(total.saturating_sub(1), |l| l.min(total.saturating_sub(1))),
                ),
                Wanted::Suffix(n) => (total.saturating_sub(n), total.saturating_sub(1)),
            };
            if first >= total || (matches!(wanted, Wanted::Suffix(0))) {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
            }
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{total}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(last - first + 1));
            (StatusCode::PARTIAL_CONTENT, first, Some(last))
        }
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if head {
        return Ok((status, headers).into_response());
    }
    export::record(&store, account, Exporter::Patient).await?;
    let (writer, reader) = tokio::io::duplex(PIPE);
    let (done, finished) = tokio::sync::oneshot::channel::<bool>();
    let account = account.clone();
    tokio::spawn(async move {
        let out = Output::range(writer, first, last);
        let ok = match export::write(&store, &account, out).await {
            // The space changed while it was written: the bytes are not
            // those the ETag names, so the download fails and is retried.
            Ok(out) => {
                out.finish().await.is_ok()
                    && export::state_tag(&store, &account)
                        .await
                        .is_ok_and(|now| now == tag)
            }
            // A client that goes away ends the export too.
            Err(e) => {
                tracing::info!(error = %e, "export stopped");
                false
            }
        };
        let _ = done.send(ok);
    });
    // After the last byte, a failed export turns into a body error, so the
    // client never takes a cut archive for a whole one.
    let outcome = futures_util::stream::once(async move {
        match finished.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("export failed"))),
        }
    })
    .filter_map(std::future::ready);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader).chain(outcome));
    Ok((status, headers, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=10-"), Some(Wanted::Range(10, None)));
        assert_eq!(
            parse_range("bytes=10-20"),
            Some(Wanted::Range(10, Some(20)))
        );
        assert_eq!(parse_range("bytes=-5"), Some(Wanted::Suffix(5)));
        assert_eq!(parse_range("bytes=20-10"), None);
        assert_eq!(parse_range("bytes=1-2,4-5"), None);
        assert_eq!(parse_range("items=1-"), None);
    }
}
