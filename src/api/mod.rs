//! The one layer that talks to the API server, for the write and the read paths alike:
//! discovery and resolution ([`discovery`]), reads and paged lists ([`read`]), watches and
//! bounded waits ([`watch`]), what the targets of one command share ([`session`]), and the
//! retry policy (here): only idempotent requests are retried, and only on transient errors.

pub mod access;
pub mod discovery;
pub mod lock;
pub mod read;
pub mod session;
pub mod watch;

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;

/// Whether a failed request is worth repeating: throttling, server errors, broken connections.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || (s.code >= 500 && s.code != 501),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs an idempotent request, retrying transient failures a few times with backoff.
/// Only for requests that are safe to repeat: reads, and creates with a deterministic name.
pub async fn retry<T, F, Fut>(mut f: F) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 4;
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs `f` on every item, at most `limit` at a time, keeping the results in input order.
/// A pool, not waves: a slot is taken up again as soon as any item finishes, whatever its
/// place (an ordered buffer would hold every slot behind its slowest first item).
pub async fn concurrently<I, T, F, Fut>(items: Vec<I>, limit: usize, f: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let f = &f;
    let mut done: Vec<(usize, T)> = futures::stream::iter(
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| async move { (i, f(item).await) }),
    )
    .buffer_unordered(limit.max(1))
    .collect()
    .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}
