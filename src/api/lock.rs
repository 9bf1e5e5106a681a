//! One rotation at a time per database, arbitrated by the API server: a
//! `coordination.k8s.io/v1` Lease per database, held by one command while it checks and
//! writes, and kept afterwards as the record of the last request written under it.
//!
//! A command creates the Lease, or takes it over with an update under the resourceVersion
//! it read; of two commands only one such write succeeds (409 for the other), so the check
//! that nothing is in flight and the write that starts a rotation cannot interleave. A
//! holder that dies leaves a Lease that expires after [`TTL_SECONDS`]. Releasing clears the
//! holder and records the request the holder wrote, so the next command can ask whether
//! that one is still running: a LIST taken before the lock could not have seen it.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use super::retry;
use crate::context::Ctx;
use crate::error::{status_code, Error, Result};
use crate::model::{own_labels, MANAGER};

/// How long a holder's claim lasts if it never releases (it died): long enough for the
/// few requests of a write phase on a slow connection.
pub const TTL_SECONDS: i32 = 60;

/// The API group of the lock's Lease.
pub const GROUP: &str = "coordination.k8s.io";

/// Annotations of the Lease that record the last request written under it.
pub mod annotations {
    /// `<kind> <namespace>/<name>` of the last request written under the lock.
    pub const LAST_REQUEST: &str = "rotate.kubectl.dev/last-request";
    /// Who wrote it (the kubeconfig context's user).
    pub const LAST_USER: &str = "rotate.kubectl.dev/last-user";
    /// When (RFC 3339).
    pub const LAST_AT: &str = "rotate.kubectl.dev/last-at";
    /// Who holds the lock now.
    pub const USER: &str = "rotate.kubectl.dev/user";
}

/// What the previous holder recorded: the request it wrote, by whom, when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The request's name (in the Lease's namespace).
    pub request: Option<String>,
    /// Who wrote it.
    pub user: Option<String>,
    /// When.
    pub at: Option<String>,
}

/// A held lock. Release it with [`Held::release`]; dropped without, it expires.
pub struct Held {
    api: Api<Lease>,
    lease: Lease,
    /// What the previous holder wrote under the lock, if anything.
    pub previous: Record,
}

/// The Lease name of a database: `kubectl-rotate.<kind>.<name>`.
pub fn lease_name(kind: &str, db: &str) -> String {
    format!("{MANAGER}.{}.{db}", kind.to_ascii_lowercase())
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn record_of(lease: &Lease) -> Record {
    let a = lease.metadata.annotations.clone().unwrap_or_default();
    Record {
        request: a.get(annotations::LAST_REQUEST).cloned(),
        user: a.get(annotations::LAST_USER).cloned(),
        at: a.get(annotations::LAST_AT).cloned(),
    }
}

/// Whether a Lease is held by a live holder at `now`.
fn held_at(lease: &Lease, now: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    let ttl = i64::from(spec.lease_duration_seconds.unwrap_or(TTL_SECONDS));
    let since = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    since.is_none_or(|t| now.as_second() - t.as_second() < ttl)
}

/// What the Lease of database `kind/db` in `ns` records of the last request written under
/// it (nothing when there is no Lease: the plugin never wrote one). A read, for the
/// inspection verbs; it takes no lock.
pub async fn last_record(ctx: &Ctx, ns: &str, kind: &str, db: &str) -> Result<Record> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let name = lease_name(kind, db);
    match retry(|| api.get_opt(&name)).await {
        Ok(lease) => Ok(lease.as_ref().map(record_of).unwrap_or_default()),
        Err(e) => Err(Error::api(format!("get lease {ns}/{name}"), e)),
    }
}

/// Why the lock could not be had: who holds it, since when.
pub struct Busy {
    /// The holder's user, when it recorded one.
    pub user: Option<String>,
    /// When it took the lock (RFC 3339).
    pub since: Option<String>,
}

/// Reads the Lease of database `kind/db` in `ns` (`None`: there is none yet), the first
/// half of taking the lock ([`claim`]). A read of a built-in resource, so it needs no
/// discovery and goes out with it.
pub async fn peek(ctx: &Ctx, ns: &str, kind: &str, db: &str) -> Result<Option<Lease>> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let name = lease_name(kind, db);
    retry(|| api.get_opt(&name))
        .await
        .map_err(|e| Error::api(format!("get lease {ns}/{name}"), e))
}

/// Takes the lock of database `kind/db` in `ns` for this command (`ctx.command_id`) from
/// what [`peek`] read, or says who holds it: creates the Lease when there was none, else
/// takes it over with an update under the resourceVersion read (409: another command was
/// faster, and is the holder).
///
/// NB: anything a previous holder wrote was written before it released the Lease, so
/// before `peek` read it free: a read that begins after `peek` answered sees it, even one
/// sent at the same time as this claim.
pub async fn claim(
    ctx: &Ctx,
    ns: &str,
    kind: &str,
    db: &str,
    peeked: Option<Lease>,
) -> Result<std::result::Result<Held, Busy>> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let name = lease_name(kind, db);
    let what = format!("lease {ns}/{name}");
    let user = super::access::user(ctx).await;
    let claim = |mut lease: Lease| {
        let now = now_micro();
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(ctx.command_id.clone()),
            lease_duration_seconds: Some(TTL_SECONDS),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..Default::default()
        });
        let a = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match &user {
            Some(u) => a.insert(annotations::USER.into(), u.clone()),
            None => a.remove(annotations::USER),
        };
        lease
    };
    let pp = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let existing = match peeked {
        Some(existing) => existing,
        None => {
            let fresh = claim(Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.to_string()),
                    labels: Some(own_labels(db)),
                    ..Default::default()
                },
                ..Default::default()
            });
            // NB: a create that collides (409 AlreadyExists) means another command made
            // the Lease since the peek: it holds the lock, or held it and may have written
            // since then, which reads sent after the peek may have missed. So it is the
            // winner, even if it has let go already. Only a retried create of our own
            // (its first attempt landed) is ours, recognised by the holder identity.
            match retry(|| api.create(&pp, &fresh)).await {
                Ok(lease) => {
                    return Ok(Ok(Held {
                        api,
                        lease,
                        previous: Record::default(),
                    }))
                }
                Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => {
                    let now = retry(|| api.get(&name))
                        .await
                        .map_err(|e| Error::api(format!("get {what}"), e))?;
                    let ours = now.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
                        == Some(ctx.command_id.as_str());
                    return Ok(match ours {
                        true => Ok(Held {
                            api,
                            lease: now,
                            previous: Record::default(),
                        }),
                        false => Err(busy(&now)),
                    });
                }
                Err(e) => return Err(Error::api(format!("create {what}"), e)),
            }
        }
    };
    let ours = existing
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        == Some(ctx.command_id.as_str());
    if !ours && held_at(&existing, jiff::Timestamp::now()) {
        return Ok(Err(busy(&existing)));
    }
    let previous = record_of(&existing);
    // The update carries the resourceVersion read: if another command took the Lease in
    // between, this one gets 409 and is the loser.
    match api.replace(&name, &pp, &claim(existing)).await {
        Ok(lease) => Ok(Ok(Held {
            api,
            lease,
            previous,
        })),
        Err(e) if status_code(&e) == Some(409) => {
            let now = retry(|| api.get(&name))
                .await
                .map_err(|e| Error::api(format!("get {what}"), e))?;
            Ok(Err(busy(&now)))
        }
        Err(e) => Err(Error::api(format!("take over {what}"), e)),
    }
}

/// [`peek`], then [`claim`]: for callers with nothing to send meanwhile.
pub async fn acquire(
    ctx: &Ctx,
    ns: &str,
    kind: &str,
    db: &str,
) -> Result<std::result::Result<Held, Busy>> {
    let peeked = peek(ctx, ns, kind, db).await?;
    claim(ctx, ns, kind, db, peeked).await
}

fn busy(lease: &Lease) -> Busy {
    Busy {
        user: lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::USER))
            .cloned(),
        since: lease
            .spec
            .as_ref()
            .and_then(|s| s.acquire_time.as_ref())
            .map(|t| t.0.to_string()),
    }
}

impl Held {
    /// Gives the lock up, recording `request` (when this command wrote one) as the last
    /// request written under it. Best effort: a Lease not released expires after
    /// [`TTL_SECONDS`], so a failure here is only a warning.
    pub async fn release(self, ctx: &Ctx, request: Option<&str>) -> Result<()> {
        let mut lease = self.lease;
        let name = lease.metadata.name.clone().unwrap_or_default();
        let user = super::access::user(ctx).await;
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
        }
        let a = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
        a.remove(annotations::USER);
        if let Some(r) = request {
            a.insert(annotations::LAST_REQUEST.into(), r.to_string());
            a.insert(
                annotations::LAST_AT.into(),
                jiff::Timestamp::now().to_string(),
            );
            match &user {
                Some(u) => a.insert(annotations::LAST_USER.into(), u.clone()),
                None => a.remove(annotations::LAST_USER),
            };
        }
        let pp = PostParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        // NB: not retried blindly: a retry after a lost response gets 409 (the first write
        // moved the resourceVersion on), which is then success if the Lease shows it.
        match self.api.replace(&name, &pp, &lease).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let now = self.api.get(&name).await;
                let released = now.as_ref().is_ok_and(|l| {
                    l.spec
                        .as_ref()
                        .is_none_or(|s| s.holder_identity.as_deref().is_none_or(str::is_empty))
                        && request.is_none_or(|r| record_of(l).request.as_deref() == Some(r))
                });
                if released {
                    Ok(())
                } else {
                    Err(Error::api(format!("release lease {name}"), e))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64, ttl: i32) -> Lease {
        let now = jiff::Timestamp::now();
        let at = now - jiff::SignedDuration::from_secs(renewed_secs_ago);
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(ttl),
                renew_time: Some(MicroTime(at)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_is_held_only_by_a_named_holder_within_its_ttl() {
        let now = jiff::Timestamp::now();
        assert!(held_at(&lease(Some("a1"), 5, 60), now));
        assert!(!held_at(&lease(Some("a1"), 61, 60), now), "expired");
        assert!(!held_at(&lease(None, 5, 60), now), "released");
        assert!(!held_at(&lease(Some(""), 5, 60), now), "released");
        assert!(!held_at(&Lease::default(), now));
    }

    #[test]
    fn lease_names_are_per_kind_and_database() {
        assert_eq!(
            lease_name("Postgres", "pg-demo"),
            "kubectl-rotate.postgres.pg-demo"
        );
    }
}
