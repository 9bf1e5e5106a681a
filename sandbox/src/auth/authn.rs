//! Authentication: a table of bearer tokens, as kube-apiserver's static token file
//! (`--token-auth-file`: token, user name, uid, groups), the service account tokens the
//! sandbox issues ([`super::serviceaccounts`]), and the anonymous user for requests without
//! credentials.
//!
//! Every authenticated user is also in `system:authenticated` (kube-apiserver's
//! AuthenticatedGroupAdder); anonymous is `system:anonymous` in `system:unauthenticated`.
//! An `Authorization` header that is not `Bearer` counts as no credentials; a bearer
//! token that no authenticator takes is 401, never anonymous (union.NewFailOnError).
//! Requests are authenticated for the API server's audience; static tokens are good for
//! it alone (kube-apiserver wraps its audience-agnostic authenticators so).

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::Shared;

use super::serviceaccounts::{self, Issuer};
use super::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, MASTERS};

/// Who a request is from: what kube-apiserver's `user.Info` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name: `alice`, `system:serviceaccount:demo:rotator`, `system:anonymous`.
    pub name: String,
    /// A unique id; empty when the authenticator gives none.
    pub uid: String,
    /// Groups, in the order the authenticator gave them.
    pub groups: Vec<String>,
    /// Extra attributes (`Impersonate-Extra-*` sets them).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with these groups and no uid.
    pub fn new(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    /// The user of requests without credentials.
    pub fn anonymous() -> UserInfo {
        UserInfo::new(ANONYMOUS, &[ALL_UNAUTHENTICATED])
    }

    /// A service account as its tokens authenticate it: `system:serviceaccount:<ns>:<name>`
    /// in `system:serviceaccounts` and `system:serviceaccounts:<ns>`.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: super::service_account_user(namespace, name),
            groups: super::service_account_groups(namespace),
            ..UserInfo::default()
        }
    }

    /// In `system:masters`: every request is allowed, before RBAC is asked.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The `authentication.k8s.io/v1` UserInfo (SelfSubjectReview, TokenReview): empty
    /// fields left out, as Go's omitempty does.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if !self.name.is_empty() {
            m.insert("username".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), json!(self.groups));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }

    /// As the authenticator hands it on: `system:authenticated` added unless the user is
    /// anonymous or already names either all-group.
    fn authenticated(mut self) -> UserInfo {
        let has_all = self
            .groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED);
        if self.name != ANONYMOUS && !has_all {
            self.groups.push(ALL_AUTHENTICATED.into());
        }
        self
    }
}

/// The token table of one sandbox, and the issuer of its service account tokens.
pub struct Users {
    tokens: RwLock<Vec<(String, UserInfo)>>,
    /// Signs and checks service account tokens.
    pub issuer: Issuer,
}

impl Default for Users {
    fn default() -> Self {
        Self::new()
    }
}

impl Users {
    /// The sandbox's two built-in users: the admin (`sandbox-admin` in `system:masters`,
    /// [`crate::ADMIN_TOKEN`]) and `bob` ([`crate::FORBIDDEN_TOKEN`]), who is in no group of
    /// his own, so only the defaults every authenticated user has apply to him.
    pub fn new() -> Users {
        Users {
            tokens: RwLock::new(vec![
                (
                    crate::ADMIN_TOKEN.to_string(),
                    UserInfo::new(super::ADMIN_USER, &[MASTERS]),
                ),
                (
                    crate::FORBIDDEN_TOKEN.to_string(),
                    UserInfo::new("bob", &[]),
                ),
            ]),
            issuer: Issuer::default(),
        }
    }

    /// Add `user` with a fresh token, which is returned.
    pub fn add(&self, user: UserInfo) -> String {
        let token = format!("sandbox-token-{:032x}", rand::random::<u128>());
        self.add_token(&token, user);
        token
    }

    /// Add (or replace) `token` for `user`.
    pub fn add_token(&self, token: &str, user: UserInfo) {
        let mut t = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        t.retain(|(k, _)| k != token);
        t.push((token.to_string(), user));
    }

    /// The first token of the user called `name`.
    pub fn token_of(&self, name: &str) -> Option<String> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(_, u)| u.name == name)
            .map(|(t, _)| t.clone())
    }

    /// The user a bearer token authenticates, `system:authenticated` added.
    pub fn lookup(&self, token: &str) -> Option<UserInfo> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, u)| u.clone().authenticated())
    }
}

/// Authenticate a request by its `Authorization` header: a bearer token's user, anonymous
/// without (bearer) credentials, 401 for a token no authenticator takes.
pub fn authenticate(shared: &Shared, authorization: Option<&str>) -> Result<UserInfo, ApiError> {
    let Some(token) = authorization.and_then(bearer_token) else {
        return Ok(UserInfo::anonymous());
    };
    let api = [serviceaccounts::ISSUER.to_string()];
    authenticate_token(shared, token, &api)
        .map(|(user, _)| user)
        .map_err(|_| ApiError::unauthorized())
}

/// Authenticate a bearer token for `audiences`, as a TokenReview asks: the user
/// (`system:authenticated` added) and the audiences the token is good for; refused, the
/// error a TokenReview reports (`invalid bearer token`, and the service account token
/// validator's reason when it had one, as kube-apiserver's union of authenticators words
/// it).
pub fn authenticate_token(
    shared: &Shared,
    token: &str,
    audiences: &[String],
) -> Result<(UserInfo, Vec<String>), String> {
    const INVALID: &str = "invalid bearer token";
    if let Some(user) = shared.users.lookup(token) {
        let good_for: Vec<String> = audiences
            .iter()
            .filter(|a| *a == serviceaccounts::ISSUER)
            .cloned()
            .collect();
        if good_for.is_empty() {
            return Err(INVALID.into());
        }
        return Ok((user, good_for));
    }
    match serviceaccounts::authenticate(shared, token, audiences) {
        Some(Ok((user, good_for))) => Ok((user.authenticated(), good_for)),
        Some(Err(why)) => Err(format!("[{INVALID}, {why}]")),
        None => Err(INVALID.into()),
    }
}

/// The token of an `Authorization: Bearer <token>` header, parsed as kube-apiserver's
/// bearer token authenticator does (scheme case-insensitive; an empty token is none).
fn bearer_token(header: &str) -> Option<&str> {
    let mut parts = header.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_their_users_with_system_authenticated_added() {
        let shared = Shared::new(&crate::Options::empty());
        let admin = authenticate(&shared, Some(&format!("Bearer {}", crate::ADMIN_TOKEN))).unwrap();
        assert_eq!(admin.name, "sandbox-admin");
        assert_eq!(admin.groups, vec!["system:masters", "system:authenticated"]);
        assert!(admin.is_master());
        let token = shared.users.add(UserInfo::new("alice", &["team-a"]));
        let alice = authenticate(&shared, Some(&format!("bearer {token}"))).unwrap();
        assert_eq!(alice.groups, vec!["team-a", "system:authenticated"]);
        assert_eq!(shared.users.token_of("alice"), Some(token.clone()));
        let other = ["https://example.com".to_string()];
        assert_eq!(
            authenticate_token(&shared, &token, &other).unwrap_err(),
            "invalid bearer token",
            "a static token is good for the API server's audience only"
        );
    }

    #[test]
    fn no_credentials_is_anonymous_and_an_unknown_token_is_401() {
        let shared = Shared::new(&crate::Options::empty());
        for h in [None, Some("Basic YWxpY2U6cHc="), Some("Bearer ")] {
            let u = authenticate(&shared, h).unwrap();
            assert_eq!(u.name, "system:anonymous", "{h:?}");
            assert_eq!(u.groups, vec!["system:unauthenticated"]);
        }
        assert_eq!(
            authenticate(&shared, Some("Bearer nope")).unwrap_err().code,
            401
        );
    }

    #[test]
    fn a_service_account_is_in_its_groups() {
        let sa = UserInfo::service_account("demo", "rotator");
        assert_eq!(sa.name, "system:serviceaccount:demo:rotator");
        assert_eq!(
            sa.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:demo"]
        );
        let users = Users::new();
        let token = users.add(sa);
        assert_eq!(
            users.lookup(&token).unwrap().groups.last().unwrap(),
            "system:authenticated"
        );
    }
}
