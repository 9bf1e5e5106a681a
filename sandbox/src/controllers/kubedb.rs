//! The simulated KubeDB ops-manager, and the per-engine credential table it shares with
//! the admission checks and the fixtures.
//!
//! One request per database runs at a time (a worker per `(ops type, namespace, database)`).
//! A worker picks the next request: among Pending requests of the same `spec.type` all but
//! the newest (by creationTimestamp, then name) become `Skipped`; the oldest survivor runs.
//!
//! `RotateAuth` walks KubeDB's documented steps (seeds/002: RotateAuth,
//! DatabasePauseSucceeded, UpdateCredential, UpdatePetSets, RestartNodes, then per pod
//! GetPod/EvictPod/CheckPodRunning, then Successful), one condition per step with
//! `operator_delay` between them. Every other ops type (Restart, VerticalScaling, ...) is
//! simulated as one step: Progressing with a condition of its type, then Successful; it
//! still takes its turn in the per-database queue, so it blocks a RotateAuth like in KubeDB.
//!
//! `spec.apply: IfReady` (the default) on a database whose `status.phase` is not `Ready`
//! ends the request `Failed` at once (NB: a simplification; KubeDB's ops-manager is not
//! public, and Failed is the outcome a tool must handle anyway). The database stays
//! `Ready` throughout the rotation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::registry::{Registry, ResourceDef};
use crate::store::{now_rfc3339, ChangeType, Part};
use crate::{ApiError, Shared};

/// How an engine's auth Secret stores credentials (REFERENCE.md, "Previous credentials").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretLayout {
    /// `username`, `password`; previous values in `username.prev`, `password.prev`.
    Basic,
    /// DocumentDB: `username`, `password`; only `password.prev` is kept.
    PasswordPrevOnly,
    /// Memcached: `authData` = `user:password`; previous value in `authData.prev`.
    AuthData,
    /// Weaviate: `username`, `password`; previous values in `username-PREV`, `password-PREV`.
    PrevSuffix,
    /// Qdrant: `api-key` and `read-only-api-key`; no previous values are kept.
    ApiKeys,
}

/// What the simulation knows about one KubeDB engine: a row of data, not code per kind.
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    /// Database kind, e.g. `Postgres`.
    pub kind: &'static str,
    /// The fixed admin user KubeDB creates.
    pub admin_user: &'static str,
    /// How the auth Secret is laid out.
    pub layout: SecretLayout,
    /// Suffix of the default auth Secret name (`<db><suffix>`).
    pub auth_suffix: &'static str,
    /// The RotateAuth webhook refuses a user-supplied secret with another username.
    pub username_fixed: bool,
    /// The primary Service's port.
    pub port: u16,
}

/// The engine row of a KubeDB database kind (unknown kinds get a generic row).
pub fn engine(kind: &str) -> Engine {
    use SecretLayout::*;
    let (admin_user, layout, auth_suffix, username_fixed, port): (
        &'static str,
        SecretLayout,
        &'static str,
        bool,
        u16,
    ) = match kind {
        "Postgres" => ("postgres", Basic, "-auth", true, 5432),
        "MySQL" => ("root", Basic, "-auth", true, 3306),
        "MariaDB" => ("root", Basic, "-auth", true, 3306),
        "PerconaXtraDB" => ("root", Basic, "-auth", false, 3306),
        "Singlestore" => ("root", Basic, "-auth", false, 3306),
        "MSSQLServer" => ("sa", Basic, "-auth", true, 1433),
        "DocumentDB" => ("postgres", PasswordPrevOnly, "-admin-auth", true, 27017),
        "MongoDB" => ("root", Basic, "-auth", false, 27017),
        "Elasticsearch" => ("elastic", Basic, "-auth", false, 9200),
        "Druid" => ("admin", Basic, "-auth", false, 8888),
        "Hazelcast" => ("admin", Basic, "-auth", false, 5701),
        "Solr" => ("admin", Basic, "-auth", false, 8983),
        "Neo4j" => ("neo4j", Basic, "-auth", false, 7687),
        "Oracle" => ("sys", Basic, "-auth", false, 1521),
        "HanaDB" => ("SYSTEM", Basic, "-auth", true, 39017),
        "Memcached" => ("admin", AuthData, "-auth", false, 11211),
        "Weaviate" => ("admin", PrevSuffix, "-auth", false, 8080),
        "Qdrant" => ("admin", ApiKeys, "-auth", false, 6333),
        "Redis" => ("default", Basic, "-auth", false, 6379),
        "RedisSentinel" => ("default", Basic, "-auth", false, 26379),
        "Kafka" => ("admin", Basic, "-auth", false, 9092),
        "RabbitMQ" => ("admin", Basic, "-auth", false, 5672),
        "ZooKeeper" => ("admin", Basic, "-auth", false, 2181),
        "Cassandra" => ("admin", Basic, "-auth", false, 9042),
        "ClickHouse" => ("admin", Basic, "-auth", false, 9000),
        "Ignite" => ("ignite", Basic, "-auth", false, 10800),
        "Milvus" => ("root", Basic, "-auth", false, 19530),
        "PgBouncer" => ("pgbouncer", Basic, "-auth", false, 5432),
        "Pgpool" => ("pcp", Basic, "-auth", false, 9999),
        "ProxySQL" => ("admin", Basic, "-auth", false, 6033),
        _ => ("admin", Basic, "-auth", false, 8080),
    };
    // NB: `kind` is taken from the known names so the row stays `Copy` and 'static.
    let kind: &'static str = KNOWN_KINDS
        .iter()
        .copied()
        .find(|k| *k == kind)
        .unwrap_or("Unknown");
    Engine {
        kind,
        admin_user,
        layout,
        auth_suffix,
        username_fixed,
        port,
    }
}

const KNOWN_KINDS: &[&str] = &[
    "Aerospike",
    "Cassandra",
    "ClickHouse",
    "DB2",
    "DocumentDB",
    "Druid",
    "Elasticsearch",
    "HanaDB",
    "Hazelcast",
    "Ignite",
    "Kafka",
    "MariaDB",
    "Memcached",
    "Milvus",
    "MongoDB",
    "MSSQLServer",
    "MySQL",
    "Neo4j",
    "Oracle",
    "PerconaXtraDB",
    "PgBouncer",
    "Pgpool",
    "Postgres",
    "ProxySQL",
    "Qdrant",
    "RabbitMQ",
    "Redis",
    "RedisSentinel",
    "Singlestore",
    "Solr",
    "Weaviate",
    "ZooKeeper",
];

/// The field of an ops request's spec naming its target (`proxyRef` for ProxySQL).
pub fn target_field(ops_kind: &str) -> &'static str {
    if ops_kind == "ProxySQLOpsRequest" {
        "proxyRef"
    } else {
        "databaseRef"
    }
}

/// The auth Secret a database uses: `spec.authSecret.name`, else `<db><suffix>`.
pub fn auth_secret_name(db: &Value, engine: &Engine) -> String {
    match db["spec"]["authSecret"]["name"].as_str() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!(
            "{}{}",
            db["metadata"]["name"].as_str().unwrap_or_default(),
            engine.auth_suffix
        ),
    }
}

/// A new password from the OS CSPRNG: 20 ASCII letters and digits, starting with a
/// letter, with at least one upper-case letter, one lower-case letter and one digit
/// (the strictest engine rules: MSSQLServer, HanaDB).
pub fn generate_password() -> String {
    use rand::rand_core::UnwrapErr;
    use rand::rngs::SysRng;
    use rand::RngExt;
    const ALPHA: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = UnwrapErr(SysRng);
    loop {
        let p: String = (0..20)
            .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
            .collect();
        let ok = p.starts_with(|c: char| c.is_ascii_alphabetic())
            && p.chars().any(|c| c.is_ascii_uppercase())
            && p.chars().any(|c| c.is_ascii_lowercase())
            && p.chars().any(|c| c.is_ascii_digit());
        if ok {
            return p;
        }
    }
}

/// A Secret's data, decoded (plus any `stringData`), as strings.
pub fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(m) = secret["data"].as_object() {
        for (k, v) in m {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            out.insert(k.clone(), String::from_utf8_lossy(&raw).into_owned());
        }
    }
    if let Some(m) = secret["stringData"].as_object() {
        for (k, v) in m {
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    out
}

/// Base64-encode Secret data.
pub fn encode_data(data: &BTreeMap<String, String>) -> Value {
    Value::Object(
        data.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect(),
    )
}

/// The first auth Secret data of an engine for `user` / `password`.
pub fn initial_data(layout: SecretLayout, user: &str, password: &str) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    match layout {
        SecretLayout::AuthData => {
            d.insert("authData".into(), format!("{user}:{password}"));
        }
        SecretLayout::ApiKeys => {
            d.insert("api-key".into(), password.into());
            d.insert("read-only-api-key".into(), generate_password());
        }
        _ => {
            d.insert("username".into(), user.into());
            d.insert("password".into(), password.into());
        }
    }
    d
}

/// The username an auth Secret holds (`authData`'s user part for Memcached).
pub fn username_of(layout: SecretLayout, data: &BTreeMap<String, String>) -> Option<String> {
    match layout {
        SecretLayout::AuthData => data
            .get("authData")
            .and_then(|a| a.split_once(':').map(|(u, _)| u.to_string()))
            .or_else(|| data.get("username").cloned()),
        _ => data.get("username").cloned(),
    }
}

/// New auth Secret data: `base` (the secret being written) with the new credentials and
/// the previous ones (from `old`) under the engine's `prev` keys.
pub fn rotated_data(
    layout: SecretLayout,
    old: &BTreeMap<String, String>,
    base: &BTreeMap<String, String>,
    user: Option<&str>,
    password: &str,
    read_only_key: Option<String>,
) -> BTreeMap<String, String> {
    let mut out = base.clone();
    let old_user = username_of(layout, old);
    let user = user.map(str::to_string).or(old_user.clone());
    match layout {
        SecretLayout::Basic | SecretLayout::PrevSuffix => {
            let (up, pp) = if layout == SecretLayout::Basic {
                ("username.prev", "password.prev")
            } else {
                ("username-PREV", "password-PREV")
            };
            if let Some(u) = &old_user {
                out.insert(up.into(), u.clone());
            }
            if let Some(p) = old.get("password") {
                out.insert(pp.into(), p.clone());
            }
            if let Some(u) = user {
                out.insert("username".into(), u);
            }
            out.insert("password".into(), password.into());
        }
        SecretLayout::PasswordPrevOnly => {
            if let Some(p) = old.get("password") {
                out.insert("password.prev".into(), p.clone());
            }
            if let Some(u) = user {
                out.insert("username".into(), u);
            }
            out.insert("password".into(), password.into());
        }
        SecretLayout::AuthData => {
            if let Some(a) = old.get("authData") {
                out.insert("authData.prev".into(), a.clone());
            }
            let u = user.unwrap_or_else(|| "admin".into());
            out.insert("authData".into(), format!("{u}:{password}"));
        }
        SecretLayout::ApiKeys => {
            out.insert("api-key".into(), password.into());
            out.insert(
                "read-only-api-key".into(),
                read_only_key.unwrap_or_else(generate_password),
            );
        }
    }
    out
}

/// An ops-request kind the manager serves, with its database kind.
#[derive(Clone, Debug)]
struct OpsKind {
    ops: ResourceDef,
    db: ResourceDef,
    secrets: ResourceDef,
    pods: ResourceDef,
    target: &'static str,
    engine: Engine,
}

fn ops_kinds(reg: &Registry) -> Vec<OpsKind> {
    let (Some(secrets), Some(pods)) = (reg.find("", "v1", "secrets"), reg.find("", "v1", "pods"))
    else {
        return vec![];
    };
    reg.defs
        .iter()
        .filter(|d| d.group == "ops.kubedb.com")
        .filter_map(|d| {
            let db_kind = d.kind.trim_end_matches("OpsRequest");
            let db = reg.find_kind("kubedb.com", db_kind)?;
            Some(OpsKind {
                ops: d.clone(),
                db: db.clone(),
                secrets: secrets.clone(),
                pods: pods.clone(),
                target: target_field(&d.kind),
                engine: engine(db_kind),
            })
        })
        .collect()
}

/// (ops type key, namespace, database name)
type DbKey = (String, String, String);

/// Databases that have a worker.
#[derive(Default)]
struct Running(Mutex<HashSet<DbKey>>);

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<DbKey>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The ops-manager's main loop: watch ops requests, keep one worker per busy database.
pub async fn run(shared: Arc<Shared>) {
    let kinds = Arc::new(ops_kinds(&shared.registry));
    let by_key: HashMap<String, usize> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| (k.ops.key(), i))
        .collect();
    let running = Arc::new(Running::default());
    // NB: subscribe before the scan so nothing committed in between is missed.
    let mut rx = shared.store.subscribe();
    rescan(&shared, &kinds, &running);
    loop {
        match rx.recv().await {
            Ok(ch) => {
                if ch.ty == ChangeType::Deleted {
                    continue;
                }
                if let Some(&i) = by_key.get(&ch.type_key) {
                    observe(&shared, &kinds, i, &ch.namespace, &ch.object, &running);
                }
            }
            Err(RecvError::Lagged(_)) => rescan(&shared, &kinds, &running),
            Err(RecvError::Closed) => return,
        }
    }
}

fn rescan(shared: &Arc<Shared>, kinds: &Arc<Vec<OpsKind>>, running: &Arc<Running>) {
    for (i, k) in kinds.iter().enumerate() {
        super::rescan_all(shared, &k.ops, |ns, obj| {
            observe(shared, kinds, i, ns, obj, running)
        });
    }
}

fn phase(obj: &Value) -> Option<&str> {
    obj["status"]["phase"].as_str()
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

/// A new or Pending request: mark it Pending and make sure its database has a worker.
fn observe(
    shared: &Arc<Shared>,
    kinds: &Arc<Vec<OpsKind>>,
    i: usize,
    ns: &str,
    obj: &Value,
    running: &Arc<Running>,
) {
    let k = &kinds[i];
    if phase(obj).is_some_and(|p| p != "Pending") {
        return;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if phase(obj).is_none() {
        let _ = set_status(shared, &k.ops, ns, name, |st, cur| {
            if st.get("phase").is_none() {
                st.insert("phase".into(), json!("Pending"));
                st.insert("observedGeneration".into(), json!(generation(cur)));
            }
        });
    }
    let db = obj["spec"][k.target]["name"].as_str().unwrap_or_default();
    if db.is_empty() {
        return;
    }
    let key: DbKey = (k.ops.key(), ns.to_string(), db.to_string());
    if running.lock().insert(key.clone()) {
        tokio::spawn(worker(
            shared.clone(),
            kinds.clone(),
            i,
            key,
            running.clone(),
        ));
    }
}

/// Write an object's status through the `/status` part; `f` edits the status map.
fn set_status(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    f: impl FnOnce(&mut Map<String, Value>, &Value),
) -> Result<Value, ApiError> {
    super::write_status(shared, def, ns, name, |cur, status| {
        if let Some(st) = status.as_object_mut() {
            f(st, cur);
        }
    })
}

/// A condition as KubeDB writes it (transcript 28); per-pod steps carry no reason.
fn condition(ty: &str, ok: bool, reason: Option<&str>, message: &str, generation: i64) -> Value {
    let mut c = json!({
        "type": ty,
        "status": if ok { "True" } else { "False" },
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339(),
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn push_condition(st: &mut Map<String, Value>, c: Value) {
    match st.get_mut("conditions").and_then(Value::as_array_mut) {
        Some(a) => a.push(c),
        None => {
            st.insert("conditions".into(), json!([c]));
        }
    }
}

fn sort_key(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Run the requests of one database, one at a time, until none is Pending.
async fn worker(
    shared: Arc<Shared>,
    kinds: Arc<Vec<OpsKind>>,
    i: usize,
    key: DbKey,
    running: Arc<Running>,
) {
    let k = &kinds[i];
    let (_, ns, db) = &key;
    loop {
        let next = {
            // NB: picking and giving up happen under the running lock, so a request
            // observed after this scan always finds either this worker or none.
            let mut set = running.lock();
            match pick_next(&shared, k, ns, db) {
                Some(obj) => obj,
                None => {
                    set.remove(&key);
                    return;
                }
            }
        };
        execute(&shared, k, ns, db, next).await;
    }
}

/// The next request to run for a database; superseded Pending duplicates become Skipped.
fn pick_next(shared: &Shared, k: &OpsKind, ns: &str, db: &str) -> Option<Value> {
    let mut pending: Vec<Value> = Vec::new();
    shared.store.scan(&k.ops, Some(ns), None, |o| {
        if o["spec"][k.target]["name"].as_str() == Some(db)
            && phase(o).is_none_or(|p| p == "Pending")
        {
            pending.push(o.clone());
        }
        true
    });
    pending.sort_by_key(sort_key);
    let mut newest_of_type: HashMap<String, String> = HashMap::new();
    for o in &pending {
        let ty = o["spec"]["type"].as_str().unwrap_or_default().to_string();
        newest_of_type.insert(
            ty,
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let mut survivors = Vec::new();
    for o in pending {
        let ty = o["spec"]["type"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let newest = &newest_of_type[ty];
        if newest == name {
            survivors.push(o);
            continue;
        }
        let gen = generation(&o);
        let msg = format!(
            "Skipped: a newer {ty} ops request {newest} is pending for {} {ns}/{db}",
            k.engine.kind
        );
        let _ = set_status(shared, &k.ops, ns, name, |st, _| {
            st.insert("phase".into(), json!("Skipped"));
            st.insert("observedGeneration".into(), json!(gen));
            push_condition(st, condition("Skipped", true, Some("Skipped"), &msg, gen));
        });
    }
    survivors.into_iter().next()
}

/// One step of a request.
#[derive(Clone, Debug)]
enum Action {
    None,
    UpdateCredential,
    EvictPod(String),
    CheckPodRunning(String),
}

struct Step {
    ty: String,
    reason: Option<String>,
    message: String,
    action: Action,
}

fn step(ty: &str, reason: Option<&str>, message: String, action: Action) -> Step {
    Step {
        ty: ty.into(),
        reason: reason.map(String::from),
        message,
        action,
    }
}

/// KubeDB's RotateAuth steps (seeds/002), per pod for each replica.
fn rotate_auth_steps(kind: &str, db: &str, replicas: u64, user_secret: bool) -> Vec<Step> {
    let lower = kind.to_lowercase();
    let mut v = vec![
        step(
            "RotateAuth",
            Some("RotateAuth"),
            format!("{kind} ops-request has started to rotate auth for {lower} nodes"),
            Action::None,
        ),
        step(
            "DatabasePauseSucceeded",
            Some("DatabasePauseSucceeded"),
            "Successfully paused database".into(),
            Action::None,
        ),
        step(
            "UpdateCredential",
            Some("UpdateCredential"),
            if user_secret {
                "Successfully referenced the user provided authSecret".into()
            } else {
                "Successfully generated new credentials".into()
            },
            Action::UpdateCredential,
        ),
        step(
            "UpdatePetSets",
            Some("UpdatePetSets"),
            format!("successfully reconciled the {kind} with updated credentials"),
            Action::None,
        ),
        step(
            "RestartNodes",
            Some("RestartNodes"),
            "Successfully restarted all nodes".into(),
            Action::None,
        ),
    ];
    for i in 0..replicas {
        let pod = format!("{db}-{i}");
        v.push(step(
            &format!("GetPod--{pod}"),
            None,
            format!("get pod; ConditionStatus:True; PodName:{pod}"),
            Action::None,
        ));
        v.push(step(
            &format!("EvictPod--{pod}"),
            None,
            format!("evict pod; ConditionStatus:True; PodName:{pod}"),
            Action::EvictPod(pod.clone()),
        ));
        v.push(step(
            &format!("CheckPodRunning--{pod}"),
            None,
            format!("check pod running; ConditionStatus:True; PodName:{pod}"),
            Action::CheckPodRunning(pod.clone()),
        ));
    }
    v
}

/// The request a worker runs.
struct Req<'a> {
    ns: &'a str,
    name: &'a str,
    gen: i64,
}

/// End a request Failed with a False condition saying why.
fn fail(shared: &Shared, k: &OpsKind, req: &Req<'_>, ty: &str, reason: &str, message: &str) {
    let (ns, name, gen) = (req.ns, req.name, req.gen);
    let _ = set_status(shared, &k.ops, ns, name, |st, _| {
        st.insert("phase".into(), json!("Failed"));
        st.insert("observedGeneration".into(), json!(gen));
        push_condition(st, condition(ty, false, Some(reason), message, gen));
    });
}

/// Walk one request through its steps.
async fn execute(shared: &Shared, k: &OpsKind, ns: &str, db_name: &str, ops: Value) {
    let name = ops["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let gen = generation(&ops);
    let req = Req {
        ns,
        name: &name,
        gen,
    };
    let ty = ops["spec"]["type"].as_str().unwrap_or_default().to_string();
    let kind = k.engine.kind;
    let failure = super::planned_failure(shared, ns, &ops);
    let user_secret = ops["spec"]["authentication"]["secretRef"]["name"]
        .as_str()
        .filter(|s| !s.is_empty());

    let db = match shared.store.get(&k.db, ns, db_name) {
        Ok(db) => db,
        Err(_) => {
            let msg = format!(
                "failed to get {}: {ns}/{db_name}: not found",
                kind.to_lowercase()
            );
            return fail(shared, k, &req, &ty, "DatabaseNotFound", &msg);
        }
    };
    let apply = ops["spec"]["apply"].as_str().unwrap_or("IfReady");
    let db_phase = db["status"]["phase"].as_str().unwrap_or("Provisioning");
    if apply != "Always" && db_phase != "Ready" {
        let msg = format!(
            "{kind} {ns}/{db_name} is not Ready (phase {db_phase}) and spec.apply is IfReady"
        );
        return fail(shared, k, &req, &ty, "DatabaseNotReady", &msg);
    }

    let steps = if ty == "RotateAuth" {
        let replicas = db["spec"]["replicas"].as_u64().unwrap_or(1).max(1);
        rotate_auth_steps(kind, db_name, replicas, user_secret.is_some())
    } else {
        vec![step(
            &ty,
            Some(&ty),
            format!("{kind} ops-request has started to process {ty}"),
            Action::None,
        )]
    };
    let d = shared.operator_delay;

    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(d).await;
        }
        let failing = failure.is_some()
            && (matches!(s.action, Action::UpdateCredential) || (ty != "RotateAuth" && i > 0));
        if failing {
            let why = failure.clone().unwrap_or_default();
            return fail(
                shared,
                k,
                &req,
                &s.ty,
                s.reason.as_deref().unwrap_or(&s.ty),
                &why,
            );
        }
        let done = match &s.action {
            Action::None => Ok(()),
            Action::UpdateCredential => update_credential(shared, k, ns, db_name, &ops),
            Action::EvictPod(pod) => evict_pod(shared, k, ns, pod),
            Action::CheckPodRunning(pod) => pod_running(shared, k, ns, pod),
        };
        if let Err(e) = done {
            return fail(
                shared,
                k,
                &req,
                &s.ty,
                s.reason.as_deref().unwrap_or(&s.ty),
                &e.message,
            );
        }
        let c = condition(&s.ty, true, s.reason.as_deref(), &s.message, gen);
        let written = set_status(shared, &k.ops, ns, &name, |st, _| {
            if i == 0 {
                st.insert("phase".into(), json!("Progressing"));
                st.insert("observedGeneration".into(), json!(gen));
            }
            push_condition(st, c);
        });
        if written.is_err() {
            return; // deleted while running
        }
    }
    if ty != "RotateAuth" && failure.is_some() {
        tokio::time::sleep(d).await;
        let why = failure.unwrap_or_default();
        return fail(shared, k, &req, &ty, &ty, &why);
    }
    tokio::time::sleep(d).await;
    let message = if ty == "RotateAuth" {
        format!("Successfully completed {} auth rotate", kind.to_lowercase())
    } else {
        "Successfully completed the modification process".to_string()
    };
    let _ = set_status(shared, &k.ops, ns, &name, |st, _| {
        st.insert("phase".into(), json!("Successful"));
        st.insert("observedGeneration".into(), json!(gen));
        push_condition(
            st,
            condition("Successful", true, Some("Successful"), &message, gen),
        );
    });
}

/// For a database bound to a real server (`crate::realdb`), change the password there
/// first, logging in with the old one; a failure fails the step and leaves the Secret as
/// it was. The fault hook `skip_real_db_change` makes the change silently not happen (the
/// Secret moves on, the server keeps the old password), as a broken rollout would.
// NB: runs the server's client synchronously: a short block of one worker thread, only
// for bound databases.
fn real_db_change(
    shared: &Shared,
    ns: &str,
    db_name: &str,
    db: &Value,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let Some(server) = crate::realdb::binding(db) else {
        return Ok(());
    };
    if shared.faults.skips_real_db_change(ns, db_name) {
        return Ok(());
    }
    let user = old.get("username").map(String::as_str).unwrap_or("");
    let (Some(o), Some(n)) = (old.get("password"), new.get("password")) else {
        return Ok(());
    };
    if o == n {
        return Ok(());
    }
    crate::realdb::change_password(&server, user, o, n).map_err(|e| {
        ApiError::internal(format!(
            "failed to update the password on the database server: {e}"
        ))
    })
}

/// Write the new credentials: a generated password into the current auth Secret, or the
/// user-supplied secret's into that secret with the database re-pointed at it; the old
/// values go under the engine's prev keys; `status.authSecret.lastUpdateTimestamp` is set.
fn update_credential(
    shared: &Shared,
    k: &OpsKind,
    ns: &str,
    db_name: &str,
    ops: &Value,
) -> Result<(), ApiError> {
    let db = shared.store.get(&k.db, ns, db_name)?;
    let layout = k.engine.layout;
    let old_name = auth_secret_name(&db, &k.engine);
    let old = secret_data(&shared.store.get(&k.secrets, ns, &old_name)?);
    let write = |secret: &str, data: BTreeMap<String, String>| {
        shared
            .store
            .modify(&k.secrets, ns, secret, Part::Main, false, |cur| {
                let mut n = cur.clone();
                n["data"] = encode_data(&data);
                Ok(n)
            })
    };
    match ops["spec"]["authentication"]["secretRef"]["name"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        None => {
            let new = rotated_data(layout, &old, &old, None, &generate_password(), None);
            real_db_change(shared, ns, db_name, &db, &old, &new)?;
            write(&old_name, new)?;
        }
        Some(user_secret) => {
            let given = secret_data(&shared.store.get(&k.secrets, ns, user_secret)?);
            let password = given
                .get("password")
                .or_else(|| given.get("api-key"))
                .cloned()
                .unwrap_or_else(generate_password);
            let user = given.get("username").cloned().filter(|u| !u.is_empty());
            let ro = given.get("read-only-api-key").cloned();
            let new = rotated_data(layout, &old, &given, user.as_deref(), &password, ro);
            real_db_change(shared, ns, db_name, &db, &old, &new)?;
            write(user_secret, new)?;
            if user_secret != old_name {
                shared
                    .store
                    .modify(&k.db, ns, db_name, Part::Main, false, |cur| {
                        let mut n = cur.clone();
                        if !n["spec"]["authSecret"].is_object() {
                            n["spec"]["authSecret"] = json!({"apiGroup": "", "kind": "Secret"});
                        }
                        n["spec"]["authSecret"]["name"] = json!(user_secret);
                        Ok(n)
                    })?;
            }
        }
    }
    set_status(shared, &k.db, ns, db_name, |st, _| {
        let mut a = st
            .get("authSecret")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        a.insert("lastUpdateTimestamp".into(), json!(now_rfc3339()));
        st.insert("authSecret".into(), Value::Object(a));
    })?;
    Ok(())
}

/// Evict a pod: it goes away and its PetSet brings it back (new uid, Pending).
fn evict_pod(shared: &Shared, k: &OpsKind, ns: &str, pod: &str) -> Result<(), ApiError> {
    let Ok(cur) = shared.store.get(&k.pods, ns, pod) else {
        return Ok(());
    };
    shared.store.delete(&k.pods, ns, pod, false, None)?;
    let mut again = cur;
    if let Some(m) = again["metadata"].as_object_mut() {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            m.remove(f);
        }
    }
    again["status"] =
        json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]});
    shared.store.create(&k.pods, ns, again, false)?;
    Ok(())
}

/// The evicted pod is Running and Ready again.
fn pod_running(shared: &Shared, k: &OpsKind, ns: &str, pod: &str) -> Result<(), ApiError> {
    if shared.store.get(&k.pods, ns, pod).is_err() {
        return Ok(());
    }
    set_status(shared, &k.pods, ns, pod, |st, _| {
        st.insert("phase".into(), json!("Running"));
        st.insert(
            "conditions".into(),
            json!([{"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}]),
        );
    })?;
    Ok(())
}
