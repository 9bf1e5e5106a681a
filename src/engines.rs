//! The engine table: one row per database kind the plugin can rotate.
//!
//! Everything that differs between engines is data here (STYLE rule 11): names used to
//! resolve `TYPE` on the command line, the API group, the ops request kind, the field that
//! names the target, the fixed admin user, the password policy, and where the previous
//! credential is kept. Each row names its [`Mechanism`], which picks the backend
//! (`backend::of`); the backends are generic over a row.
//!
//! The KubeDB rows were read off the CRDs kubedb/apimachinery publishes (the same table
//! the sandbox serves, `sandbox/data/`), the rules from KubeDB's and Azure Arc's guides.

/// The API group of KubeDB database resources.
pub const KUBEDB_GROUP: &str = "kubedb.com";
/// The API group of KubeDB ops requests.
pub const KUBEDB_OPS_GROUP: &str = "ops.kubedb.com";
/// The API group of Azure Arc SQL Managed Instance.
pub const ARC_SQL_GROUP: &str = "sql.arcdata.microsoft.com";

/// How a kind's credentials are rotated, and so which backend drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// Azure Arc: bump `spec.update.managedCredentialsGeneration` on the object itself.
    Arc,
    /// KubeDB: create a `<Kind>OpsRequest` of type `RotateAuth`.
    KubeDb(OpsSpec),
}

/// The KubeDB ops request resource that carries `RotateAuth` for a database kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpsSpec {
    /// e.g. `PostgresOpsRequest`.
    pub kind: &'static str,
    /// e.g. `postgresopsrequests`.
    pub plural: &'static str,
    /// e.g. `pgops` (what `kubectl get` accepts).
    pub short_name: &'static str,
    /// The spec field naming the database.
    pub target_field: TargetField,
}

/// The spec field of an ops request that names its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetField {
    /// `spec.databaseRef.name` (every kind but ProxySQL).
    DatabaseRef,
    /// `spec.proxyRef.name` (ProxySQLOpsRequest).
    ProxyRef,
}

impl TargetField {
    /// The JSON field name under `spec`.
    pub fn field(self) -> &'static str {
        match self {
            TargetField::DatabaseRef => "databaseRef",
            TargetField::ProxyRef => "proxyRef",
        }
    }
}

/// Rules a user-supplied password must meet before the webhook or database sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// Anything non-empty.
    Any,
    /// SQL Server: upper case, lower case and digits.
    Mssql,
    /// Neo4j: at least 8 characters and not equal to the username.
    Neo4j,
    /// SAP HANA: ASCII letters and digits only, at least 8, starts with a letter,
    /// upper case, lower case and digits.
    HanaDb,
}

impl PasswordPolicy {
    /// The longest password the engine takes, in characters: SQL Server documents 128;
    /// elsewhere 1024, far beyond any need and short of what clients and Secrets choke on.
    pub fn max_len(self) -> usize {
        match self {
            PasswordPolicy::Mssql => 128,
            _ => 1024,
        }
    }
}

/// Where the auth Secret keeps the previous credential after a RotateAuth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrevLayout {
    /// `username.prev` and `password.prev` (most engines).
    UserPass,
    /// Memcached: `authData` / `authData.prev`.
    MemcachedAuthData,
    /// DocumentDB: only `password.prev`, in the Secret `<db>-admin-auth`.
    PasswordOnly,
    /// Weaviate: the current keys with a `-PREV` suffix.
    // NB: only the suffix is documented; the plugin does not roll Weaviate back yet.
    PrevSuffix,
    /// Qdrant: `api-key` / `read-only-api-key`, no previous value kept.
    None,
    /// Not a Secret-based rotation (Azure Arc).
    NotApplicable,
}

/// Where one credential sits in an auth Secret: the keys of its username and password, or
/// one key holding `user:password` (Memcached's `authData`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// A password key and, when the layout keeps one, a username key. With no username key
    /// the credential's user is the current one (DocumentDB) or there is none (Qdrant).
    Split {
        /// The username's key, if the layout keeps one for this credential.
        username: Option<&'static str>,
        /// The password's (or API key's) key.
        password: &'static str,
    },
    /// One key holding `user:password`.
    Joined(&'static str),
}

impl Keys {
    /// Every key, username first.
    pub fn all(self) -> Vec<&'static str> {
        match self {
            Keys::Split { username, password } => username.into_iter().chain([password]).collect(),
            Keys::Joined(k) => vec![k],
        }
    }

    /// The key that must be present for the credential to exist: the password's.
    pub fn password_key(self) -> &'static str {
        match self {
            Keys::Split { password, .. } => password,
            Keys::Joined(k) => k,
        }
    }

    /// The keys in words, for messages: `username.prev and password.prev`.
    pub fn describe(self) -> String {
        self.all().join(" and ")
    }
}

impl PrevLayout {
    /// Where the current credential is kept.
    pub fn current(self) -> Keys {
        match self {
            PrevLayout::MemcachedAuthData => Keys::Joined("authData"),
            PrevLayout::None => Keys::Split {
                username: None,
                password: "api-key",
            },
            _ => Keys::Split {
                username: Some("username"),
                password: "password",
            },
        }
    }

    /// Where the previous credential is kept after a RotateAuth; `None` when the engine
    /// keeps none (Qdrant).
    pub fn previous(self) -> Option<Keys> {
        match self {
            PrevLayout::UserPass | PrevLayout::NotApplicable => Some(Keys::Split {
                username: Some("username.prev"),
                password: "password.prev",
            }),
            // NB: DocumentDB keeps only password.prev; its username cannot change.
            PrevLayout::PasswordOnly => Some(Keys::Split {
                username: None,
                password: "password.prev",
            }),
            PrevLayout::MemcachedAuthData => Some(Keys::Joined("authData.prev")),
            PrevLayout::PrevSuffix => Some(Keys::Split {
                username: Some("username-PREV"),
                password: "password-PREV",
            }),
            PrevLayout::None => None,
        }
    }
}

/// The wire protocol a client logs in with, for login checks and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// PostgreSQL frontend/backend protocol (Postgres, PgBouncer, Pgpool).
    Postgres,
    /// MySQL client/server protocol (MySQL, MariaDB, PerconaXtraDB, ProxySQL, Singlestore).
    MySql,
    /// SQL Server's TDS (MSSQLServer, Arc SQL MI).
    Tds,
    /// MongoDB wire protocol (MongoDB, DocumentDB).
    MongoDb,
    /// RESP (Redis, RedisSentinel).
    Redis,
    /// HTTP with basic auth or an API key (Elasticsearch, Druid, Solr, Qdrant, Weaviate, ...).
    Http,
    /// Kafka's protocol with SASL/PLAIN.
    Kafka,
    /// Cassandra's CQL native protocol.
    Cql,
    /// ClickHouse's native TCP protocol.
    ClickHouse,
    /// Memcached's binary protocol with SASL.
    Memcached,
    /// Neo4j's Bolt.
    Bolt,
    /// Oracle Net (TNS).
    OracleNet,
    /// SAP HANA's SQL command network protocol.
    HanaSql,
    /// Hazelcast's client protocol.
    Hazelcast,
    /// Apache Ignite's thin-client protocol.
    IgniteThin,
    /// AMQP 0-9-1 (RabbitMQ).
    Amqp,
    /// ZooKeeper's client protocol with SASL digest.
    ZooKeeper,
    /// gRPC (Milvus).
    Grpc,
}

/// One row of the engine table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSpec {
    /// The resource kind, e.g. `Postgres`.
    pub kind: &'static str,
    /// The API group of the database resource.
    pub group: &'static str,
    /// The resource plural, e.g. `postgreses`.
    pub plural: &'static str,
    /// Short names `kubectl get` accepts, e.g. `pg`.
    pub short_names: &'static [&'static str],
    /// How credentials are rotated.
    pub mechanism: Mechanism,
    /// Who installs this kind's CRD, for "not installed" messages.
    pub operator: &'static str,
    /// The admin user the operator fixes, if any.
    pub admin_user: Option<&'static str>,
    /// Whether the webhook refuses a change of username ("database username cannot be changed").
    pub username_immutable: bool,
    /// Password rules for a user-supplied Secret.
    pub password_policy: PasswordPolicy,
    /// Where the previous credential is kept.
    pub prev: PrevLayout,
    /// The default auth Secret is `<db><auth_suffix>` when `spec.authSecret.name` is unset.
    pub auth_suffix: &'static str,
    /// How clients log in.
    pub protocol: Protocol,
}

impl EngineSpec {
    /// `plural.group`, the CRD name, e.g. `postgreses.kubedb.com`.
    pub fn resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// The lower-case kind, which kubectl accepts as the singular name.
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }

    /// The short name used in messages and hints (`pg`), or the plural when there is none.
    pub fn short(&self) -> &'static str {
        self.short_names.first().copied().unwrap_or(self.plural)
    }

    /// The ops request spec, for KubeDB kinds.
    pub fn ops(&self) -> Option<&OpsSpec> {
        match &self.mechanism {
            Mechanism::KubeDb(ops) => Some(ops),
            _ => None,
        }
    }

    /// Whether `word` names this kind (kind, plural, singular or a short name; any case).
    pub fn matches(&self, word: &str) -> bool {
        self.kind.eq_ignore_ascii_case(word)
            || self.plural.eq_ignore_ascii_case(word)
            || self
                .short_names
                .iter()
                .any(|s| s.eq_ignore_ascii_case(word))
    }
}

/// A KubeDB row with the defaults most engines share; fields are overridden per row.
const fn kubedb(
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    ops_kind: &'static str,
    ops_plural: &'static str,
    ops_short: &'static str,
) -> EngineSpec {
    EngineSpec {
        kind,
        group: KUBEDB_GROUP,
        plural,
        short_names,
        operator: "the KubeDB operator",
        mechanism: Mechanism::KubeDb(OpsSpec {
            kind: ops_kind,
            plural: ops_plural,
            short_name: ops_short,
            target_field: TargetField::DatabaseRef,
        }),
        admin_user: None,
        username_immutable: false,
        password_policy: PasswordPolicy::Any,
        prev: PrevLayout::UserPass,
        auth_suffix: "-auth",
        protocol: Protocol::Http,
    }
}

impl EngineSpec {
    /// The fixed admin user.
    const fn admin(mut self, user: &'static str) -> Self {
        self.admin_user = Some(user);
        self
    }

    /// The webhook refuses a username change.
    const fn immutable_user(mut self) -> Self {
        self.username_immutable = true;
        self
    }

    /// A password policy other than "non-empty".
    const fn policy(mut self, p: PasswordPolicy) -> Self {
        self.password_policy = p;
        self
    }

    /// Where the previous credential is kept, when not `username.prev`/`password.prev`.
    const fn prev(mut self, p: PrevLayout) -> Self {
        self.prev = p;
        self
    }

    /// The ops request names its target in `spec.proxyRef`.
    const fn proxy_ref(mut self) -> Self {
        if let Mechanism::KubeDb(mut ops) = self.mechanism {
            ops.target_field = TargetField::ProxyRef;
            self.mechanism = Mechanism::KubeDb(ops);
        }
        self
    }

    /// The login protocol.
    const fn wire(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// The default auth Secret's suffix, when not `-auth`.
    const fn auth_suffix(mut self, suffix: &'static str) -> Self {
        self.auth_suffix = suffix;
        self
    }
}

/// Azure Arc-enabled SQL Managed Instance.
pub const SQL_MANAGED_INSTANCE: EngineSpec = EngineSpec {
    kind: "SqlManagedInstance",
    group: ARC_SQL_GROUP,
    plural: "sqlmanagedinstances",
    short_names: &["sqlmi"],
    mechanism: Mechanism::Arc,
    operator: "the Azure Arc data controller",
    admin_user: None,
    username_immutable: false,
    password_policy: PasswordPolicy::Any,
    prev: PrevLayout::NotApplicable,
    auth_suffix: "-login-secret",
    protocol: Protocol::Tds,
};

/// Every kind the plugin knows: the Arc row, then the 30 KubeDB kinds whose ops request
/// accepts `RotateAuth`, in the order of `kubedb-kinds.tsv`.
pub const ENGINES: &[EngineSpec] = &[
    SQL_MANAGED_INSTANCE,
    kubedb(
        "Cassandra",
        "cassandras",
        &["cas"],
        "CassandraOpsRequest",
        "cassandraopsrequests",
        "casops",
    )
    .wire(Protocol::Cql),
    kubedb(
        "ClickHouse",
        "clickhouses",
        &["ch"],
        "ClickHouseOpsRequest",
        "clickhouseopsrequests",
        "chops",
    )
    .wire(Protocol::ClickHouse),
    // NB: DocumentDB keeps only password.prev, in <db>-admin-auth.
    kubedb(
        "DocumentDB",
        "documentdbs",
        &["docdb"],
        "DocumentDBOpsRequest",
        "documentdbopsrequests",
        "dcops",
    )
    .immutable_user()
    .prev(PrevLayout::PasswordOnly)
    .auth_suffix("-admin-auth")
    .wire(Protocol::MongoDb),
    kubedb(
        "Druid",
        "druids",
        &["dr"],
        "DruidOpsRequest",
        "druidopsrequests",
        "drops",
    )
    .admin("admin")
    .wire(Protocol::Http),
    kubedb(
        "Elasticsearch",
        "elasticsearches",
        &["es"],
        "ElasticsearchOpsRequest",
        "elasticsearchopsrequests",
        "esops",
    )
    .admin("elastic")
    .wire(Protocol::Http),
    kubedb(
        "HanaDB",
        "hanadbs",
        &["hdb"],
        "HanaDBOpsRequest",
        "hanadbopsrequests",
        "hdbops",
    )
    .admin("SYSTEM")
    .policy(PasswordPolicy::HanaDb)
    .wire(Protocol::HanaSql),
    kubedb(
        "Hazelcast",
        "hazelcasts",
        &["hz"],
        "HazelcastOpsRequest",
        "hazelcastopsrequests",
        "hzops",
    )
    .admin("admin")
    .wire(Protocol::Hazelcast),
    kubedb(
        "Ignite",
        "ignites",
        &["ig"],
        "IgniteOpsRequest",
        "igniteopsrequests",
        "igops",
    )
    .wire(Protocol::IgniteThin),
    kubedb(
        "Kafka",
        "kafkas",
        &["kf"],
        "KafkaOpsRequest",
        "kafkaopsrequests",
        "kfops",
    )
    .wire(Protocol::Kafka),
    kubedb(
        "MariaDB",
        "mariadbs",
        &["md"],
        "MariaDBOpsRequest",
        "mariadbopsrequests",
        "mariaops",
    )
    .admin("root")
    .immutable_user()
    .wire(Protocol::MySql),
    kubedb(
        "Memcached",
        "memcacheds",
        &["mc"],
        "MemcachedOpsRequest",
        "memcachedopsrequests",
        "mcops",
    )
    .prev(PrevLayout::MemcachedAuthData)
    .wire(Protocol::Memcached),
    kubedb(
        "Milvus",
        "milvuses",
        &["mv"],
        "MilvusOpsRequest",
        "milvusopsrequests",
        "mvops",
    )
    .wire(Protocol::Grpc),
    kubedb(
        "MongoDB",
        "mongodbs",
        &["mg"],
        "MongoDBOpsRequest",
        "mongodbopsrequests",
        "mgops",
    )
    .admin("root")
    .wire(Protocol::MongoDb),
    kubedb(
        "MSSQLServer",
        "mssqlservers",
        &["ms"],
        "MSSQLServerOpsRequest",
        "mssqlserveropsrequests",
        "msops",
    )
    .admin("sa")
    .immutable_user()
    .policy(PasswordPolicy::Mssql)
    .wire(Protocol::Tds),
    kubedb(
        "MySQL",
        "mysqls",
        &["my"],
        "MySQLOpsRequest",
        "mysqlopsrequests",
        "myops",
    )
    .admin("root")
    .immutable_user()
    .wire(Protocol::MySql),
    kubedb(
        "Neo4j",
        "neo4js",
        &["neo"],
        "Neo4jOpsRequest",
        "neo4jopsrequests",
        "neoops",
    )
    .admin("neo4j")
    .policy(PasswordPolicy::Neo4j)
    .wire(Protocol::Bolt),
    // NB: OracleOpsRequest has no maxRetries field.
    kubedb(
        "Oracle",
        "oracles",
        &["ora"],
        "OracleOpsRequest",
        "oracleopsrequests",
        "oraops",
    )
    .admin("sys")
    .wire(Protocol::OracleNet),
    kubedb(
        "PerconaXtraDB",
        "perconaxtradbs",
        &["px"],
        "PerconaXtraDBOpsRequest",
        "perconaxtradbopsrequests",
        "pxcops",
    )
    .admin("root")
    .wire(Protocol::MySql),
    kubedb(
        "PgBouncer",
        "pgbouncers",
        &["pb"],
        "PgBouncerOpsRequest",
        "pgbounceropsrequests",
        "pbops",
    )
    .wire(Protocol::Postgres),
    kubedb(
        "Pgpool",
        "pgpools",
        &["pp"],
        "PgpoolOpsRequest",
        "pgpoolopsrequests",
        "ppops",
    )
    .wire(Protocol::Postgres),
    kubedb(
        "Postgres",
        "postgreses",
        &["pg"],
        "PostgresOpsRequest",
        "postgresopsrequests",
        "pgops",
    )
    .admin("postgres")
    .immutable_user()
    .wire(Protocol::Postgres),
    // NB: ProxySQLOpsRequest names its target in spec.proxyRef, not spec.databaseRef.
    kubedb(
        "ProxySQL",
        "proxysqls",
        &["prx"],
        "ProxySQLOpsRequest",
        "proxysqlopsrequests",
        "prxops",
    )
    .proxy_ref()
    .wire(Protocol::MySql),
    // NB: Qdrant's credentials are two API keys, and no previous value is kept.
    kubedb(
        "Qdrant",
        "qdrants",
        &["qd"],
        "QdrantOpsRequest",
        "qdrantopsrequests",
        "qdops",
    )
    .prev(PrevLayout::None)
    .wire(Protocol::Http),
    kubedb(
        "RabbitMQ",
        "rabbitmqs",
        &["rm"],
        "RabbitMQOpsRequest",
        "rabbitmqopsrequests",
        "rmops",
    )
    .wire(Protocol::Amqp),
    kubedb(
        "Redis",
        "redises",
        &["rd"],
        "RedisOpsRequest",
        "redisopsrequests",
        "rdops",
    )
    .wire(Protocol::Redis),
    kubedb(
        "RedisSentinel",
        "redissentinels",
        &["rds"],
        "RedisSentinelOpsRequest",
        "redissentinelopsrequests",
        "rdsops",
    )
    .wire(Protocol::Redis),
    kubedb(
        "Singlestore",
        "singlestores",
        &["sdb"],
        "SinglestoreOpsRequest",
        "singlestoreopsrequests",
        "sdbops",
    )
    .admin("root")
    .wire(Protocol::MySql),
    kubedb(
        "Solr",
        "solrs",
        &["sl"],
        "SolrOpsRequest",
        "solropsrequests",
        "slops",
    )
    .admin("admin")
    .wire(Protocol::Http),
    kubedb(
        "Weaviate",
        "weaviates",
        &["wv"],
        "WeaviateOpsRequest",
        "weaviateopsrequests",
        "wvops",
    )
    .prev(PrevLayout::PrevSuffix)
    .wire(Protocol::Http),
    kubedb(
        "ZooKeeper",
        "zookeepers",
        &["zk"],
        "ZooKeeperOpsRequest",
        "zookeeperopsrequests",
        "zkops",
    )
    .wire(Protocol::ZooKeeper),
];

/// Finds the row whose kind, plural, singular or short name is `word` (case-insensitive).
pub fn find(word: &str) -> Option<&'static EngineSpec> {
    ENGINES.iter().find(|e| e.matches(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const TSV: &str = include_str!("../tests/data/kubedb-kinds.tsv");

    #[test]
    fn the_table_holds_the_arc_row_and_all_thirty_rotate_auth_kinds() {
        assert_eq!(ENGINES.len(), 31);
        assert_eq!(ENGINES.iter().filter(|e| e.ops().is_some()).count(), 30);
    }

    #[test]
    fn every_kubedb_row_agrees_with_the_published_crds() {
        // kind -> (plural, short) for databases and ops requests, read from the TSV.
        let mut dbs = std::collections::HashMap::new();
        let mut ops = std::collections::HashMap::new();
        for line in TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split('\t').collect();
            match f[0] {
                "kubedb.com" => {
                    dbs.insert(f[1], (f[2], f[3]));
                }
                "ops.kubedb.com" if f[7] == "RotateAuth" => {
                    ops.insert(f[1], (f[2], f[3], f[8]));
                }
                _ => {}
            }
        }
        assert_eq!(ops.len(), 30, "the TSV lists 30 RotateAuth kinds");
        for e in ENGINES.iter().filter(|e| e.group == KUBEDB_GROUP) {
            let (plural, short) = dbs[e.kind];
            assert_eq!(e.plural, plural, "{}", e.kind);
            assert_eq!(e.short_names, &[short], "{}", e.kind);
            let o = e.ops().unwrap();
            let (oplural, oshort, field) = ops[o.kind];
            assert_eq!(o.kind, format!("{}OpsRequest", e.kind));
            assert_eq!(o.plural, oplural, "{}", e.kind);
            assert_eq!(o.short_name, oshort, "{}", e.kind);
            assert_eq!(o.target_field.field(), field, "{}", e.kind);
        }
        let ours: HashSet<&str> = ENGINES
            .iter()
            .filter_map(|e| e.ops())
            .map(|o| o.kind)
            .collect();
        let theirs: HashSet<&str> = ops.keys().copied().collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn names_resolve_case_insensitively_by_kind_plural_and_short_name() {
        for word in [
            "sqlmi",
            "SqlManagedInstance",
            "sqlmanagedinstances",
            "SQLMI",
        ] {
            assert_eq!(find(word).unwrap().kind, "SqlManagedInstance", "{word}");
        }
        for word in ["ms", "mssqlserver", "MSSQLServer", "mssqlservers"] {
            assert_eq!(find(word).unwrap().kind, "MSSQLServer", "{word}");
        }
        for word in ["pg", "postgres", "Postgres", "postgreses"] {
            assert_eq!(find(word).unwrap().kind, "Postgres", "{word}");
        }
        assert!(find("pgops").is_none(), "ops request names are not targets");
        assert!(find("pod").is_none());
    }

    #[test]
    fn no_two_rows_share_a_name() {
        let mut seen = HashSet::new();
        for e in ENGINES {
            for n in std::iter::once(e.kind.to_ascii_lowercase())
                .chain(std::iter::once(e.plural.to_string()))
                .chain(e.short_names.iter().map(|s| s.to_string()))
            {
                assert!(seen.insert(n.clone()), "{n} is ambiguous");
            }
        }
    }

    #[test]
    fn the_special_rows_carry_their_quirks() {
        let proxysql = find("proxysql").unwrap().ops().unwrap();
        assert_eq!(proxysql.target_field, TargetField::ProxyRef);
        assert_eq!(find("ms").unwrap().admin_user, Some("sa"));
        assert_eq!(find("ms").unwrap().password_policy, PasswordPolicy::Mssql);
        assert_eq!(find("hanadb").unwrap().admin_user, Some("SYSTEM"));
        assert_eq!(
            find("memcached").unwrap().prev,
            PrevLayout::MemcachedAuthData
        );
        assert_eq!(find("docdb").unwrap().prev, PrevLayout::PasswordOnly);
        assert_eq!(find("weaviate").unwrap().prev, PrevLayout::PrevSuffix);
        assert_eq!(find("qdrant").unwrap().prev, PrevLayout::None);
        let immutable: Vec<&str> = ENGINES
            .iter()
            .filter(|e| e.username_immutable)
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            immutable,
            ["DocumentDB", "MariaDB", "MSSQLServer", "MySQL", "Postgres"]
        );
        assert_eq!(find("sqlmi").unwrap().mechanism, Mechanism::Arc);
    }

    #[test]
    fn the_plugin_and_the_sandbox_operator_agree_on_every_engines_credentials() {
        use rotate_sandbox::controllers::kubedb::{engine, SecretLayout};
        for e in ENGINES.iter().filter(|e| e.ops().is_some()) {
            let sb = engine(e.kind);
            assert_eq!(sb.kind, e.kind, "the sandbox knows {}", e.kind);
            if let Some(admin) = e.admin_user {
                assert_eq!(sb.admin_user, admin, "{}: admin user", e.kind);
            }
            if sb.username_fixed {
                assert!(
                    e.username_immutable || e.admin_user.is_some(),
                    "{}: the sandbox's webhook refuses a username change, so the plugin must too",
                    e.kind
                );
            }
            let layout = match e.prev {
                PrevLayout::UserPass => SecretLayout::Basic,
                PrevLayout::PasswordOnly => SecretLayout::PasswordPrevOnly,
                PrevLayout::MemcachedAuthData => SecretLayout::AuthData,
                PrevLayout::PrevSuffix => SecretLayout::PrevSuffix,
                PrevLayout::None => SecretLayout::ApiKeys,
                PrevLayout::NotApplicable => unreachable!("{}", e.kind),
            };
            assert_eq!(sb.layout, layout, "{}: secret layout", e.kind);
            assert_eq!(
                sb.auth_suffix, e.auth_suffix,
                "{}: auth Secret name",
                e.kind
            );
        }
    }
}
