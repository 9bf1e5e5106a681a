//! The object store: every object by (type, namespace, name), one global resourceVersion
//! counter as etcd's revision, and a bounded change history that watches replay from.
//!
//! All writes go through [`Store::create`], [`Store::modify`] and [`Store::delete`], which
//! run under one lock, so optimistic concurrency (resourceVersion preconditions) is exact.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::error::{ApiError, Gr};
use crate::registry::ResourceDef;

/// How many changes watches can replay from.
const HISTORY: usize = 200_000;

/// Watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl ChangeType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resourceVersion it produced.
    pub rv: u64,
    /// What happened.
    pub ty: ChangeType,
    /// `ResourceDef::key()` of the object's type.
    pub type_key: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change (before it, for a delete, with the delete's rv).
    pub object: Value,
}

/// Which part of an object an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status changes are ignored when the type has a status subresource.
    Main,
    /// The `/status` subresource: only status changes are kept.
    Status,
}

type Key = (String, String, String);

/// A receiver of committed changes.
pub type ChangeReceiver = broadcast::Receiver<Arc<Change>>;

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Changes at or below this rv are no longer in `history`.
    compacted: u64,
}

/// The sandbox's etcd.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// RFC 3339 at second precision, as Kubernetes writes timestamps.
/// One `metadata.managedFields` entry for `obj` as a real server writes it on create: the
/// manager, operation Update, and the FieldsV1 set of every field the client set (labels,
/// annotations, owner references, finalizers, spec and the other top-level fields; not the
/// server's own metadata, not status behind a status subresource). Real objects carry
/// these, so lists the size of a real server's come from them.
pub fn managed_fields_entry(
    obj: &Value,
    api_version: &str,
    manager: &str,
    status_subresource: bool,
) -> Value {
    fn set(v: &Value) -> Value {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut out = serde_json::Map::new();
                out.insert(".".into(), json!({}));
                for (k, v) in m {
                    out.insert(format!("f:{k}"), set(v));
                }
                Value::Object(out)
            }
            _ => json!({}),
        }
    }
    let mut fields = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    for k in ["labels", "annotations", "ownerReferences", "finalizers"] {
        if let Some(v) = obj["metadata"].get(k) {
            meta.insert(format!("f:{k}"), set(v));
        }
    }
    if !meta.is_empty() {
        fields.insert("f:metadata".into(), Value::Object(meta));
    }
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            let skip = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || (k == "status" && status_subresource);
            if !skip {
                fields.insert(format!("f:{k}"), set(v));
            }
        }
    }
    json!({
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": now_rfc3339(),
    })
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random (version 4) UUID, as object uids are.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0xf,
        b[7],
        8 | (b[8] & 3),
        b[8] >> 4,
        b[9],
        b[10..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

/// The random suffix of `generateName`, from the same alphabet as the apiserver's.
pub fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| ALPHA[rand::random_range(0..ALPHA.len())] as char)
        .collect()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Everything but metadata and status: what a change of bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A DNS-1123 subdomain check, as names must pass.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Why `name` is not a valid name for objects of `def`, in the apiserver's words; `None`
/// when it is valid. RBAC objects take path segments (IsValidPathSegmentName), the rest
/// DNS-1123 subdomains.
fn name_problem(def: &ResourceDef, name: &str) -> Option<String> {
    if def.path_segment_names {
        return match name {
            "." => Some("may not be '.'".into()),
            ".." => Some("may not be '..'".into()),
            _ if name.contains('/') => Some("may not contain '/'".into()),
            _ if name.contains('%') => Some("may not contain '%'".into()),
            _ => None,
        };
    }
    (!valid_name(name)).then(|| "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_string())
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(16_384);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 1,
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // NB: a panic while holding the lock poisons it; the data is still consistent
        // because every write is applied at the end of a critical section.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current resourceVersion (etcd revision).
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn commit(
        &self,
        inner: &mut Inner,
        ty: ChangeType,
        def: &ResourceDef,
        ns: &str,
        object: Value,
    ) {
        let change = Arc::new(Change {
            rv: inner.rv,
            ty,
            type_key: def.key(),
            namespace: ns.to_string(),
            object,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        let _ = self.tx.send(change);
    }

    fn check_namespace(inner: &Inner, def: &ResourceDef, ns: &str) -> Result<(), ApiError> {
        if def.namespaced
            && !inner.objects.contains_key(&(
                "namespaces".to_string(),
                String::new(),
                ns.to_string(),
            ))
        {
            return Err(ApiError::not_found(
                Gr {
                    group: "",
                    plural: "namespaces",
                },
                ns,
            ));
        }
        Ok(())
    }

    /// Read one object.
    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        let inner = self.lock();
        inner
            .objects
            .get(&(def.key(), ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(
                    Gr {
                        group: &def.group,
                        plural: &def.plural,
                    },
                    name,
                )
            })
    }

    /// All objects of a type (in one namespace, or all), ordered by namespace and name,
    /// starting after `after` (`ns/name`, for `continue`), with the store's resourceVersion.
    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        after: Option<(&str, &str)>,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let tk = def.key();
        let start: Key = match after {
            Some((a_ns, a_name)) => (tk.clone(), a_ns.to_string(), format!("{a_name}\0")),
            None => (tk.clone(), ns.unwrap_or("").to_string(), String::new()),
        };
        let items = inner
            .objects
            .range(start..)
            .take_while(|((t, n, _), _)| *t == tk && ns.is_none_or(|want| want == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Visit objects of a type without cloning them all (for large lists); stops when `f`
    /// returns false. Returns the store's resourceVersion.
    pub fn scan(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        after: Option<(&str, &str)>,
        mut f: impl FnMut(&Value) -> bool,
    ) -> u64 {
        let inner = self.lock();
        let tk = def.key();
        let start: Key = match after {
            Some((a_ns, a_name)) => (tk.clone(), a_ns.to_string(), format!("{a_name}\0")),
            None => (tk.clone(), ns.unwrap_or("").to_string(), String::new()),
        };
        for ((t, n, _), v) in inner.objects.range(start..) {
            if *t != tk || ns.is_some_and(|want| want != n) {
                break;
            }
            if !f(v) {
                break;
            }
        }
        inner.rv
    }

    /// Create an object. Fills name (from `generateName`), namespace, uid, managedFields,
    /// resourceVersion, creationTimestamp and (custom resources) generation.
    pub fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let gr = Gr {
            group: &def.group,
            plural: &def.plural,
        };
        let mut inner = self.lock();
        Self::check_namespace(&inner, def, ns)?;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        // The HTTP layer names the manager (from the User-Agent) in a stub entry.
        let manager = obj
            .pointer("/metadata/managedFields/0/manager")
            .and_then(Value::as_str)
            .unwrap_or("rotate-sandbox")
            .to_string();
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            let Some(prefix) = meta_str(&obj, "generateName").map(str::to_string) else {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    "",
                    vec![crate::error::Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            };
            // NB: the real apiserver retries a colliding generated name a few times too.
            for _ in 0..8 {
                let candidate = format!("{prefix}{}", random_suffix(5));
                if !inner
                    .objects
                    .contains_key(&(def.key(), ns.to_string(), candidate.clone()))
                {
                    name = candidate;
                    break;
                }
            }
        }
        if let Some(problem) = name_problem(def, &name) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                &name,
                vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{name}\": {problem}"),
                    field: "metadata.name".into(),
                }],
            ));
        }
        let key = (def.key(), ns.to_string(), name.clone());
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(gr, &name));
        }
        let next_rv = inner.rv + 1;
        {
            let m = obj["metadata"]
                .as_object_mut()
                .expect("metadata is an object");
            m.insert("name".into(), json!(name));
            if def.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(new_uid()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.remove("managedFields");
            if def.tracks_generation() {
                m.insert("generation".into(), json!(1));
            }
            m.remove("deletionTimestamp");
            if !dry_run {
                m.insert("resourceVersion".into(), json!(next_rv.to_string()));
            } else {
                m.remove("resourceVersion");
            }
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        if def.status_subresource && (def.custom || crate::workloads::is_workload(def)) {
            // NB: with a status subresource, status is not settable on create.
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if def.kind == "Namespace" {
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        obj["metadata"]["managedFields"] = json!([managed_fields_entry(
            &obj,
            &def.api_version(),
            &manager,
            def.status_subresource,
        )]);
        if dry_run {
            return Ok(obj);
        }
        inner.rv = next_rv;
        inner.objects.insert(key, obj.clone());
        self.commit(&mut inner, ChangeType::Added, def, ns, obj.clone());
        Ok(obj)
    }

    /// Read-modify-write one object atomically: `f` gets the current object and returns the
    /// new one. A `metadata.resourceVersion` in the result that differs from the current one
    /// is a precondition failure (409 Conflict), as for PUT and for patches carrying one.
    /// A write that changes nothing is not stored and keeps the resourceVersion.
    pub fn modify(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        part: Part,
        dry_run: bool,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let gr = Gr {
            group: &def.group,
            plural: &def.plural,
        };
        let mut inner = self.lock();
        let key = (def.key(), ns.to_string(), name.to_string());
        let Some(current) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(gr, name));
        };
        let mut new = f(&current)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the object is not a JSON object"));
        }
        let cur_rv = meta_str(&current, "resourceVersion")
            .unwrap_or("")
            .to_string();
        if let Some(rv) = meta_str(&new, "resourceVersion") {
            if !rv.is_empty() && rv != cur_rv {
                return Err(ApiError::conflict(gr, name));
            }
        }
        if let Some(n) = meta_str(&new, "name") {
            if n != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        // Keep what a client cannot change.
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "namespace",
            "name",
            "managedFields",
        ] {
            match current["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        new["apiVersion"] = current["apiVersion"].clone();
        new["kind"] = current["kind"].clone();
        match part {
            Part::Status => {
                // Only status changes; everything else stays as it was.
                let status = new.get("status").cloned();
                let meta = new["metadata"].clone();
                new = current.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                let _ = meta;
            }
            Part::Main => {
                if def.status_subresource {
                    match current.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
            }
        }
        if def.tracks_generation() && spec_part(&new) != spec_part(&current) {
            let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        new["metadata"]["resourceVersion"] = json!(cur_rv);
        if new == current {
            return Ok(current);
        }
        if dry_run {
            return Ok(new);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(key, new.clone());
        self.commit(&mut inner, ChangeType::Modified, def, ns, new.clone());
        Ok(new)
    }

    /// Delete one object (a namespace takes its contents with it). `precondition_rv`
    /// is `preconditions.resourceVersion` of DeleteOptions.
    pub fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        dry_run: bool,
        precondition_rv: Option<&str>,
    ) -> Result<Value, ApiError> {
        let gr = Gr {
            group: &def.group,
            plural: &def.plural,
        };
        let mut inner = self.lock();
        let key = (def.key(), ns.to_string(), name.to_string());
        let Some(current) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(gr, name));
        };
        if let Some(rv) = precondition_rv {
            if Some(rv) != meta_str(&current, "resourceVersion") {
                return Err(ApiError::conflict(gr, name));
            }
        }
        if dry_run {
            return Ok(current);
        }
        if def.kind == "Namespace" {
            let contained: Vec<Key> = inner
                .objects
                .keys()
                .filter(|(t, n, _)| n == name && t != "namespaces")
                .cloned()
                .collect();
            for k in contained {
                if let Some(obj) = inner.objects.remove(&k) {
                    inner.rv += 1;
                    let mut obj = obj;
                    obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    let change = Arc::new(Change {
                        rv: inner.rv,
                        ty: ChangeType::Deleted,
                        type_key: k.0.clone(),
                        namespace: k.1.clone(),
                        object: obj,
                    });
                    inner.history.push_back(change.clone());
                    let _ = self.tx.send(change);
                }
            }
        }
        inner.objects.remove(&key);
        inner.rv += 1;
        let mut gone = current;
        gone["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.commit(&mut inner, ChangeType::Deleted, def, ns, gone.clone());
        Ok(gone)
    }

    /// Changes after `rv` still in history, plus a receiver for later ones, taken
    /// atomically so nothing is missed or doubled. `Err` = 410 Expired.
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Arc<Change>>, ChangeReceiver), ApiError> {
        let inner = self.lock();
        if rv < inner.compacted {
            return Err(ApiError::expired(rv, inner.compacted));
        }
        let rx = self.tx.subscribe();
        let backlog = inner
            .history
            .iter()
            .filter(|c| c.rv > rv)
            .cloned()
            .collect();
        Ok((backlog, rx))
    }

    /// Forget history up to now (tests use it to provoke 410 Expired).
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted = inner.rv;
    }

    /// A receiver of every future change (for controllers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Number of objects of a type (tests, benchmarks).
    pub fn count(&self, def: &ResourceDef) -> usize {
        let tk = def.key();
        self.lock()
            .objects
            .keys()
            .filter(|(t, _, _)| *t == tk)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn setup() -> (Registry, Store) {
        let reg = Registry::builtin();
        let store = Store::new();
        let ns = reg.find("", "v1", "namespaces").unwrap().clone();
        store
            .create(&ns, "", json!({"metadata": {"name": "demo"}}), false)
            .unwrap();
        (reg, store)
    }

    #[test]
    fn stale_resource_version_is_a_conflict_and_changes_nothing() {
        let (reg, store) = setup();
        let mi = reg
            .find("sql.arcdata.microsoft.com", "v2", "sqlmanagedinstances")
            .unwrap();
        let created = store
            .create(
                mi,
                "demo",
                json!({"metadata": {"name": "mi"}, "spec": {}}),
                false,
            )
            .unwrap();
        let rv = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let ok = store
            .modify(mi, "demo", "mi", Part::Main, false, |cur| {
                let mut n = cur.clone();
                n["spec"]["x"] = json!(1);
                Ok(n)
            })
            .unwrap();
        assert_eq!(ok["metadata"]["generation"], json!(2));
        let err = store
            .modify(mi, "demo", "mi", Part::Main, false, |cur| {
                let mut n = cur.clone();
                n["metadata"]["resourceVersion"] = json!(rv);
                n["spec"]["x"] = json!(2);
                Ok(n)
            })
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(store.get(mi, "demo", "mi").unwrap()["spec"]["x"], json!(1));
    }

    #[test]
    fn status_writes_through_the_main_resource_are_ignored() {
        let (reg, store) = setup();
        let pg = reg.find("kubedb.com", "v1", "postgreses").unwrap();
        store
            .create(
                pg,
                "demo",
                json!({"metadata": {"name": "p"}, "spec": {"version": "1"}}),
                false,
            )
            .unwrap();
        let after = store
            .modify(pg, "demo", "p", Part::Main, false, |cur| {
                let mut n = cur.clone();
                n["status"] = json!({"phase": "Ready"});
                Ok(n)
            })
            .unwrap();
        assert!(after.get("status").is_none());
        let after = store
            .modify(pg, "demo", "p", Part::Status, false, |cur| {
                let mut n = cur.clone();
                n["status"] = json!({"phase": "Ready"});
                n["spec"]["version"] = json!("2");
                Ok(n)
            })
            .unwrap();
        assert_eq!(after["status"]["phase"], json!("Ready"));
        assert_eq!(after["spec"]["version"], json!("1"));
        assert_eq!(after["metadata"]["generation"], json!(1));
    }

    #[test]
    fn watch_replays_history_after_a_resource_version_and_expires_compacted_ones() {
        let (reg, store) = setup();
        let sec = reg.find("", "v1", "secrets").unwrap();
        let rv0 = store.resource_version();
        store
            .create(sec, "demo", json!({"metadata": {"name": "a"}}), false)
            .unwrap();
        store
            .create(
                sec,
                "demo",
                json!({"metadata": {"generateName": "b-"}}),
                false,
            )
            .unwrap();
        let (backlog, _rx) = store.watch_from(rv0).unwrap();
        assert_eq!(backlog.len(), 2);
        assert!(backlog[1].object["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("b-"));
        store.compact();
        assert_eq!(store.watch_from(rv0).unwrap_err().code, 410);
    }

    #[test]
    fn dry_run_create_stores_nothing() {
        let (reg, store) = setup();
        let sec = reg.find("", "v1", "secrets").unwrap();
        let rv = store.resource_version();
        let obj = store
            .create(sec, "demo", json!({"metadata": {"name": "a"}}), true)
            .unwrap();
        assert_eq!(obj["metadata"]["name"], json!("a"));
        assert_eq!(store.resource_version(), rv);
        assert_eq!(store.get(sec, "demo", "a").unwrap_err().code, 404);
    }

    #[test]
    fn objects_in_a_missing_namespace_are_refused() {
        let (reg, store) = setup();
        let sec = reg.find("", "v1", "secrets").unwrap();
        let e = store
            .create(sec, "nope", json!({"metadata": {"name": "a"}}), false)
            .unwrap_err();
        assert_eq!(e.code, 404);
        assert_eq!(e.message, "namespaces \"nope\" not found");
    }
}
