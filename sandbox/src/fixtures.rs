//! Objects the sandbox starts with, as chainable builders tests and benchmarks reuse.
//!
//! ```no_run
//! # let shared: rotate_sandbox::Shared = todo!();
//! use rotate_sandbox::fixtures::{Db, SqlMi};
//! Db::new("Postgres", "team-a", "orders").replicas(3).password("Str0ngPassw0rd").insert(&shared).unwrap();
//! SqlMi::new("team-a", "mi-1").insert(&shared).unwrap();
//! ```
//!
//! Database objects start from the ones a real kube-apiserver with KubeDB's CRDs accepted
//! (`data/kubedb-minimal-objects.yaml`), get the CRD defaults and pass the same schema
//! checks as an API request, and are stored at the preferred version.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::controllers::kubedb::{self, engine, generate_password, initial_data, SecretLayout};
use crate::store::{now_rfc3339, Part};
use crate::{admission, ApiError, Fixtures, Shared};

/// Admin password of the demo MSSQLServer `demo/mssql-demo` (user `sa`).
pub const MSSQL_DEMO_PASSWORD: &str = "Mssql7Demo4Kq2Lp9Xw";
/// Admin password of the demo Postgres `demo/pg-demo` (user `postgres`).
pub const PG_DEMO_PASSWORD: &str = "PgDemo4Rt8Vn2Yz6Hb";
/// Admin password of the demo MariaDB `demo/md-demo` (user `root`).
pub const MD_DEMO_PASSWORD: &str = "MdDemo6Wq3Ks8Pz2Tc";
/// Password of the demo Redis `demo/rd-demo` (its `default` user).
pub const RD_DEMO_PASSWORD: &str = "RdDemo9Lm4Xv7Bn3Gj";
/// Admin login password of the demo SqlManagedInstance `demo/sqlmi-demo` (user `arcadmin`).
pub const SQLMI_DEMO_PASSWORD: &str = "SqlMi3Demo7Fj5GmNc";

/// Every password the demo fixtures start with (leak tests search output for them).
pub fn demo_passwords() -> Vec<&'static str> {
    vec![
        MSSQL_DEMO_PASSWORD,
        PG_DEMO_PASSWORD,
        MD_DEMO_PASSWORD,
        RD_DEMO_PASSWORD,
        SQLMI_DEMO_PASSWORD,
    ]
}

/// Load a fixture set into the store: namespaces `default` and `demo` always; with
/// [`Fixtures::Demo`] also `mssql-demo`, `pg-demo`, `md-demo`, `rd-demo` and `sqlmi-demo` in
/// `demo`; with [`Fixtures::Consumers`] those and the workloads of [`add_consumers`].
pub fn load(shared: &Shared, fixtures: Fixtures) {
    for ns in ["default", "demo"] {
        namespace(shared, ns).expect("the built-in namespaces can be created");
    }
    if fixtures == Fixtures::Consumers {
        load(shared, Fixtures::Demo);
        add_consumers(shared).expect("the consumer workloads are valid");
        return;
    }
    if fixtures == Fixtures::Demo {
        Db::new("MSSQLServer", "demo", "mssql-demo")
            .version("2022-cu12")
            .password(MSSQL_DEMO_PASSWORD)
            .insert(shared)
            .expect("the demo MSSQLServer is valid");
        Db::new("Postgres", "demo", "pg-demo")
            .version("16.1")
            .password(PG_DEMO_PASSWORD)
            .insert(shared)
            .expect("the demo Postgres is valid");
        // MariaDB and Redis: with Postgres, the engines `verify` is tested on against real
        // servers (`serve --real-db md-demo=mysql://...`, `rd-demo=redis://...`).
        Db::new("MariaDB", "demo", "md-demo")
            .version("10.11.2")
            .password(MD_DEMO_PASSWORD)
            .insert(shared)
            .expect("the demo MariaDB is valid");
        Db::new("Redis", "demo", "rd-demo")
            .version("7.2.3")
            .password(RD_DEMO_PASSWORD)
            .insert(shared)
            .expect("the demo Redis is valid");
        SqlMi::new("demo", "sqlmi-demo")
            .password(SQLMI_DEMO_PASSWORD)
            .insert(shared)
            .expect("the demo SqlManagedInstance is valid");
    }
}

/// Create a namespace unless it exists.
pub fn namespace(shared: &Shared, name: &str) -> Result<(), ApiError> {
    let def = core(shared, "namespaces")?;
    if shared.store.get(def, "", name).is_ok() {
        return Ok(());
    }
    match shared
        .store
        .create(def, "", json!({"metadata": {"name": name}}), false)
    {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The workloads that consume the demo databases' auth Secrets, in `demo`: Deployment
/// `pg-consumer` reads `pg-demo-auth` through env `secretKeyRef`s, StatefulSet
/// `md-consumer` mounts `md-demo-auth` as a volume, CronJob `rd-consumer` takes
/// `rd-demo-auth` with `envFrom`.
pub const CONSUMERS_YAML: &str = include_str!("../data/consumers.yaml");

/// Add [`CONSUMERS_YAML`]'s workloads (as the admin would `kubectl apply` them); the
/// workload controller then rolls them out. Not part of [`Fixtures::Demo`], whose object
/// and request counts tests rely on; [`Fixtures::Consumers`] is Demo with these.
pub fn add_consumers(shared: &Shared) -> Result<Vec<Value>, ApiError> {
    apply_yaml(shared, CONSUMERS_YAML)
}

/// Create or replace any object of a served kind, as `kubectl apply` by the admin would
/// (defaults and validation applied, no authorization): the namespace from its metadata,
/// `default` when a namespaced object names none.
pub fn apply(shared: &Shared, mut obj: Value) -> Result<Value, ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    let def = shared
        .registry
        .find_by_api_version(&api_version, &kind)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\""
            ))
        })?;
    let ns = match (def.namespaced, obj["metadata"]["namespace"].as_str()) {
        (false, _) => String::new(),
        (true, Some(ns)) if !ns.is_empty() => ns.to_string(),
        (true, _) => "default".to_string(),
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    admission::mutate(shared, def, &mut obj);
    if shared.store.get(def, &ns, &name).is_err() {
        admission::validate(shared, def, &ns, &obj, None)?;
        return shared.store.create(def, &ns, obj, false);
    }
    shared
        .store
        .modify(def, &ns, &name, Part::Main, false, |cur| {
            let mut new = obj;
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
            admission::validate(shared, def, &ns, &new, Some(cur))?;
            Ok(new)
        })
}

/// [`apply`] every object of a multi-document YAML text (`---` between them).
pub fn apply_yaml(shared: &Shared, text: &str) -> Result<Vec<Value>, ApiError> {
    let mut out = vec![];
    for doc in serde_yaml::Deserializer::from_str(text) {
        let obj = Value::deserialize(doc)
            .map_err(|e| ApiError::bad_request(format!("the YAML is not valid: {e}")))?;
        if obj.is_object() {
            out.push(apply(shared, obj)?);
        }
    }
    Ok(out)
}

fn core<'a>(shared: &'a Shared, plural: &str) -> Result<&'a crate::ResourceDef, ApiError> {
    shared
        .registry
        .find("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("core resource {plural} is not registered")))
}

const MINIMAL_OBJECTS: &str = include_str!("../data/kubedb-minimal-objects.yaml");

/// The spec of the minimal accepted object of a kind (namespace placeholder `NS` replaced).
fn minimal_spec(kind: &str, ns: &str) -> Value {
    static SPECS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    let specs = SPECS.get_or_init(|| {
        serde_yaml::Deserializer::from_str(MINIMAL_OBJECTS)
            .filter_map(|doc| Value::deserialize(doc).ok())
            .filter_map(|v| Some((v["kind"].as_str()?.to_string(), v["spec"].clone())))
            .collect()
    });
    let mut spec = specs
        .get(kind)
        .cloned()
        .unwrap_or_else(|| json!({"version": "1"}));
    replace_ns(&mut spec, ns);
    spec
}

fn replace_ns(v: &mut Value, ns: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "namespace" && x.as_str() == Some("NS") {
                    *x = json!(ns);
                } else {
                    replace_ns(x, ns);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_ns(x, ns)),
        _ => {}
    }
}

fn secret_type(layout: SecretLayout) -> &'static str {
    match layout {
        SecretLayout::AuthData | SecretLayout::ApiKeys => "Opaque",
        _ => "kubernetes.io/basic-auth",
    }
}

/// A KubeDB database of any kind, with its auth Secret, pods `<name>-<i>` and Services
/// `<name>` (primary) and `<name>-pods` (governing).
#[derive(Clone, Debug)]
pub struct Db {
    kind: String,
    namespace: String,
    name: String,
    replicas: u32,
    version: Option<String>,
    username: Option<String>,
    password: Option<String>,
    phase: String,
    auth_secret: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Db {
    /// A Ready database of `kind` (e.g. `Postgres`) with one replica, the engine's admin
    /// user and a generated password.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Db {
        Db {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            replicas: 1,
            version: None,
            username: None,
            password: None,
            phase: "Ready".into(),
            auth_secret: None,
            labels: BTreeMap::new(),
        }
    }
    /// `spec.replicas` (and that many pods).
    pub fn replicas(mut self, n: u32) -> Db {
        self.replicas = n.max(1);
        self
    }
    /// `spec.version`.
    pub fn version(mut self, v: &str) -> Db {
        self.version = Some(v.into());
        self
    }
    /// The username in the auth Secret (default: the engine's admin user).
    pub fn username(mut self, u: &str) -> Db {
        self.username = Some(u.into());
        self
    }
    /// The password in the auth Secret (default: generated).
    pub fn password(mut self, p: &str) -> Db {
        self.password = Some(p.into());
        self
    }
    /// `status.phase` (default `Ready`).
    pub fn phase(mut self, p: &str) -> Db {
        self.phase = p.into();
        self
    }
    /// The auth Secret's name (default `<name>-auth`; DocumentDB `<name>-admin-auth`).
    pub fn auth_secret(mut self, name: &str) -> Db {
        self.auth_secret = Some(name.into());
        self
    }
    /// A label on the database object.
    pub fn label(mut self, key: &str, value: &str) -> Db {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Store the database (at its preferred version, with CRD defaults, `status.phase` and
    /// `status.authSecret.lastUpdateTimestamp`), its auth Secret (unless it exists), pods
    /// and Services, creating the namespace if needed; returns the database object.
    pub fn insert(self, shared: &Shared) -> Result<Value, ApiError> {
        let def = shared
            .registry
            .find_kind("kubedb.com", &self.kind)
            .ok_or_else(|| ApiError::bad_request(format!("no KubeDB kind {}", self.kind)))?;
        let eng = engine(&self.kind);
        let (ns, name) = (self.namespace.as_str(), self.name.as_str());
        namespace(shared, ns)?;
        let auth = self
            .auth_secret
            .clone()
            .unwrap_or_else(|| format!("{name}{}", eng.auth_suffix));
        let mut spec = minimal_spec(&self.kind, ns);
        if let Some(v) = &self.version {
            spec["version"] = json!(v);
        }
        spec["authSecret"] = json!({"name": auth});
        spec["replicas"] = json!(self.replicas);
        let mut obj = json!({"metadata": {"name": name}, "spec": spec});
        if !self.labels.is_empty() {
            obj["metadata"]["labels"] = json!(self.labels);
        }
        admission::mutate(shared, def, &mut obj);
        admission::validate(shared, def, ns, &obj, None)?;
        shared.store.create(def, ns, obj, false)?;
        let now = now_rfc3339();
        let phase = self.phase.clone();
        let db = shared.store.modify(def, ns, name, Part::Status, false, |cur| {
            let mut n = cur.clone();
            n["status"] = json!({
                "phase": phase,
                "observedGeneration": 1,
                "authSecret": {"lastUpdateTimestamp": now},
                "conditions": [
                    {"type": "ProvisioningStarted", "status": "True", "reason": "DatabaseProvisioningStartedSuccessfully", "observedGeneration": 1, "lastTransitionTime": now, "message": format!("The KubeDB operator has started the provisioning of {} {ns}/{name}", self.kind)},
                    {"type": "Ready", "status": if phase == "Ready" { "True" } else { "False" }, "reason": "AllReplicasReady", "observedGeneration": 1, "lastTransitionTime": now, "message": format!("The {} {ns}/{name} is {phase}", self.kind)},
                ],
            });
            Ok(n)
        })?;

        let labels = json!({
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "kubedb.com",
            "app.kubernetes.io/name": format!("{}.kubedb.com", def.plural),
        });
        let secrets = core(shared, "secrets")?;
        if shared.store.get(secrets, ns, &auth).is_err() {
            let user = self
                .username
                .clone()
                .unwrap_or_else(|| eng.admin_user.to_string());
            let password = self.password.clone().unwrap_or_else(generate_password);
            let data = initial_data(eng.layout, &user, &password);
            shared.store.create(
                secrets,
                ns,
                json!({
                    "metadata": {"name": auth, "labels": labels},
                    "type": secret_type(eng.layout),
                    "data": kubedb::encode_data(&data),
                }),
                false,
            )?;
        }

        let pods = core(shared, "pods")?;
        let container = self.kind.to_lowercase();
        let image = format!(
            "kubedb/{container}:{}",
            self.version.as_deref().unwrap_or("1")
        );
        for i in 0..self.replicas {
            let mut pl = labels.clone();
            pl["kubedb.com/role"] = json!(if i == 0 { "primary" } else { "standby" });
            pl["statefulset.kubernetes.io/pod-name"] = json!(format!("{name}-{i}"));
            shared.store.create(
                pods,
                ns,
                json!({
                    "metadata": {"name": format!("{name}-{i}"), "labels": pl},
                    "spec": {"containers": [{"name": container, "image": image, "ports": [{"containerPort": eng.port, "name": "db"}]}]},
                    "status": {"phase": "Running", "podIP": format!("10.244.0.{}", 10 + i), "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}]},
                }),
                false,
            )?;
        }

        let services = core(shared, "services")?;
        let mut primary_sel = labels.clone();
        primary_sel["kubedb.com/role"] = json!("primary");
        shared.store.create(
            services,
            ns,
            json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"type": "ClusterIP", "selector": primary_sel, "ports": [{"name": "primary", "port": eng.port, "targetPort": "db", "protocol": "TCP"}]},
            }),
            false,
        )?;
        shared.store.create(
            services,
            ns,
            json!({
                "metadata": {"name": format!("{name}-pods"), "labels": labels},
                "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "db", "port": eng.port, "targetPort": "db", "protocol": "TCP"}]},
            }),
            false,
        )?;
        Ok(db)
    }
}

/// An Azure Arc SqlManagedInstance with its admin login Secret `<name>-login-secret`,
/// pod `<name>-0` and Service `<name>-external-svc`.
#[derive(Clone, Debug)]
pub struct SqlMi {
    namespace: String,
    name: String,
    username: String,
    password: Option<String>,
    credentials_generation: Option<i64>,
    state: String,
    replicas: u32,
}

impl SqlMi {
    /// A Ready General Purpose instance, `managedCredentialsGeneration` absent (= 0).
    pub fn new(namespace: &str, name: &str) -> SqlMi {
        SqlMi {
            namespace: namespace.into(),
            name: name.into(),
            username: "arcadmin".into(),
            password: None,
            credentials_generation: None,
            state: "Ready".into(),
            replicas: 1,
        }
    }
    /// The admin login's username (default `arcadmin`).
    pub fn username(mut self, u: &str) -> SqlMi {
        self.username = u.into();
        self
    }
    /// The admin login's password (default: generated).
    pub fn password(mut self, p: &str) -> SqlMi {
        self.password = Some(p.into());
        self
    }
    /// `spec.update.managedCredentialsGeneration`.
    pub fn credentials_generation(mut self, n: i64) -> SqlMi {
        self.credentials_generation = Some(n);
        self
    }
    /// `status.state` (default `Ready`; observedGeneration is caught up either way).
    pub fn state(mut self, s: &str) -> SqlMi {
        self.state = s.into();
        self
    }
    /// `spec.replicas` (3 = Business Critical).
    pub fn replicas(mut self, n: u32) -> SqlMi {
        self.replicas = n.max(1);
        self
    }

    /// Store the instance, its login Secret, pod and Service; returns the instance.
    pub fn insert(self, shared: &Shared) -> Result<Value, ApiError> {
        let def = shared
            .registry
            .find_kind("sql.arcdata.microsoft.com", "SqlManagedInstance")
            .ok_or_else(|| ApiError::internal("SqlManagedInstance is not registered"))?;
        let (ns, name) = (self.namespace.as_str(), self.name.as_str());
        namespace(shared, ns)?;
        let login = format!("{name}-login-secret");
        let tier = if self.replicas > 1 {
            "BusinessCritical"
        } else {
            "GeneralPurpose"
        };
        let mut spec = json!({
            "dev": true,
            "tier": tier,
            "replicas": self.replicas,
            "license": "LicenseIncluded",
            "security": {"adminLoginSecret": login},
            "services": {"primary": {"type": "ClusterIP", "port": 1433}},
        });
        if let Some(g) = self.credentials_generation {
            spec["update"] = json!({"managedCredentialsGeneration": g});
        }
        let mut obj = json!({"metadata": {"name": name}, "spec": spec});
        admission::mutate(shared, def, &mut obj);
        admission::validate(shared, def, ns, &obj, None)?;
        let created = shared.store.create(def, ns, obj, false)?;
        let generation = created["metadata"]["generation"].as_i64().unwrap_or(1);
        let (state, replicas) = (self.state.clone(), self.replicas);
        let mi = shared
            .store
            .modify(def, ns, name, Part::Status, false, |cur| {
                let mut n = cur.clone();
                n["status"] = json!({
                    "state": state,
                    "observedGeneration": generation,
                    "readyReplicas": format!("{replicas}/{replicas}"),
                    "primaryEndpoint": format!("{name}-external-svc.{ns}.svc.cluster.local,1433"),
                });
                Ok(n)
            })?;

        let labels =
            json!({"app.kubernetes.io/instance": name, "arc-resource": "sqlmanagedinstance"});
        let secrets = core(shared, "secrets")?;
        if shared.store.get(secrets, ns, &login).is_err() {
            let data: BTreeMap<String, String> = [
                ("username".to_string(), self.username.clone()),
                (
                    "password".to_string(),
                    self.password.clone().unwrap_or_else(generate_password),
                ),
            ]
            .into_iter()
            .collect();
            shared.store.create(
                secrets,
                ns,
                json!({"metadata": {"name": login}, "type": "kubernetes.io/basic-auth", "data": kubedb::encode_data(&data)}),
                false,
            )?;
        }
        let pods = core(shared, "pods")?;
        for i in 0..self.replicas {
            shared.store.create(
                pods,
                ns,
                json!({
                    "metadata": {"name": format!("{name}-{i}"), "labels": labels},
                    "spec": {"containers": [{"name": "arc-sqlmi", "image": "mcr.microsoft.com/arcdata/arc-sqlmi", "ports": [{"containerPort": 1433, "name": "sql"}]}]},
                    "status": {"phase": "Running", "podIP": format!("10.244.1.{}", 10 + i), "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}]},
                }),
                false,
            )?;
        }
        let services = core(shared, "services")?;
        shared.store.create(
            services,
            ns,
            json!({
                "metadata": {"name": format!("{name}-external-svc"), "labels": labels},
                "spec": {"type": "ClusterIP", "selector": labels, "ports": [{"name": "port-mssql-tds", "port": 1433, "targetPort": 1433, "protocol": "TCP"}]},
            }),
            false,
        )?;
        Ok(mi)
    }
}
