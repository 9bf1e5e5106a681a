//! Which resources the cluster serves, and at which version: the plugin asks discovery
//! instead of assuming a version, so clusters serving other versions work.

use kube::api::ApiResource;
use kube::discovery::Discovery;

use super::retry;
use crate::context::Ctx;
use crate::engines::{EngineSpec, ARC_SQL_GROUP, ENGINES, KUBEDB_GROUP, KUBEDB_OPS_GROUP};
use crate::error::{Error, Result};

/// Finds the served version of `engine`'s resource (and of `extra` resources in other groups)
/// by discovery, so clusters serving other versions work. Returns them in argument order.
pub async fn discover(ctx: &Ctx, wanted: &[Wanted]) -> Result<Vec<ApiResource>> {
    let discovery = discover_plugin_groups(ctx.client.clone()).await?;
    wanted.iter().map(|w| resolve(&discovery, w)).collect()
}

/// The served version of a wanted resource in a discovery result: the group's preferred
/// version if it serves the resource, else the first other version that does.
pub fn resolve(discovery: &Discovery, w: &Wanted) -> Result<ApiResource> {
    let missing = || Error::OperatorMissing {
        operator: w.operator,
        group: w.group,
        resource: format!("{}.{}", w.plural, w.group),
    };
    served(discovery, w.group, w.plural).ok_or_else(missing)
}

/// The served version of `plural.group`: the group's preferred version if it serves the
/// resource, else the first other version that does, in the server's order.
pub fn served(discovery: &Discovery, group: &str, plural: &str) -> Option<ApiResource> {
    let g = discovery.get(group)?;
    let mut versions: Vec<&str> = g.preferred_version().into_iter().collect();
    versions.extend(g.versions().filter(|v| Some(*v) != g.preferred_version()));
    versions.into_iter().find_map(|v| {
        g.versioned_resources(v)
            .into_iter()
            .find(|(ar, _)| ar.plural == plural)
            .map(|(ar, _)| ar)
    })
}

/// A resource to find by discovery.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// Its API group.
    pub group: &'static str,
    /// Its plural, as discovery lists it.
    pub plural: &'static str,
    /// Who installs it, for the "not installed" message.
    pub operator: &'static str,
}

impl Wanted {
    /// The engine's own resource.
    pub fn engine(e: &EngineSpec) -> Wanted {
        Wanted {
            group: e.group,
            plural: e.plural,
            operator: e.operator,
        }
    }

    /// The engine's resource and, for KubeDB, its ops-request resource after it.
    pub fn engine_and_ops(e: &EngineSpec) -> Vec<Wanted> {
        let mut wanted = vec![Wanted::engine(e)];
        if let Some(ops) = e.ops() {
            wanted.push(Wanted {
                group: crate::engines::KUBEDB_OPS_GROUP,
                plural: ops.plural,
                operator: "the KubeDB ops-manager",
            });
        }
        wanted
    }
}

/// An engine whose CRD the cluster serves, with its ops request resource if that is served too.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    /// The engine row.
    pub engine: &'static EngineSpec,
    /// The database resource at its preferred served version.
    pub ar: ApiResource,
    /// The ops request resource (KubeDB), if served.
    pub ops_ar: Option<ApiResource>,
}

/// Every engine the cluster serves, found with one aggregated discovery request (falling
/// back to per-group discovery on servers without it). Kinds whose CRD is absent are left out.
pub async fn installed(ctx: &Ctx) -> Result<Vec<Installed>> {
    let discovery = discover_plugin_groups(ctx.client.clone()).await?;
    let find = |group: &str, plural: &str| served(&discovery, group, plural);
    Ok(ENGINES
        .iter()
        .filter_map(|engine| {
            let ar = find(engine.group, engine.plural)?;
            let ops_ar = engine
                .ops()
                .and_then(|ops| find(KUBEDB_OPS_GROUP, ops.plural));
            Some(Installed { engine, ar, ops_ar })
        })
        .collect())
}

/// What the last discovery on this cluster found ([`remember`]), for a caller that starts
/// its reads while discovery runs and then keeps only those discovery confirms. Nothing
/// when there is no cache, it is unreadable, or it names an engine this build lacks.
pub fn remembered(ctx: &Ctx) -> Vec<Installed> {
    let Some(text) = ctx
        .discovery_cache
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
    else {
        return Vec::new();
    };
    let entries: Vec<Remembered> = serde_json::from_str(&text).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|r| {
            let engine = ENGINES.iter().find(|e| e.kind == r.kind)?;
            (r.ar.group == engine.group && r.ar.plural == engine.plural).then_some(Installed {
                engine,
                ar: r.ar,
                ops_ar: r.ops_ar,
            })
        })
        .collect()
}

/// Remembers what discovery found (see [`remembered`]); best effort: a cache that cannot
/// be written is no error, the next command runs discovery first again.
pub fn remember(ctx: &Ctx, kinds: &[Installed]) {
    let Some(file) = &ctx.discovery_cache else {
        return;
    };
    let entries: Vec<Remembered> = kinds
        .iter()
        .map(|k| Remembered {
            kind: k.engine.kind.to_string(),
            ar: k.ar.clone(),
            ops_ar: k.ops_ar.clone(),
        })
        .collect();
    let Ok(text) = serde_json::to_string(&entries) else {
        return;
    };
    if std::fs::read_to_string(file).ok().as_deref() == Some(text.as_str()) {
        return;
    }
    let Some(dir) = file.parent() else { return };
    // NB: written aside and renamed, so a concurrent reader sees the old file or the new.
    let tmp = dir.join(format!(".{}.{}", std::process::id(), ctx.command_id));
    let _ = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, file));
    let _ = std::fs::remove_file(&tmp);
}

/// One engine in the discovery cache.
#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    kind: String,
    ar: ApiResource,
    ops_ar: Option<ApiResource>,
}

/// Discovery of the groups the plugin uses (KubeDB, its ops requests, Arc SQL): the
/// aggregated endpoint first (one request), per-group discovery on servers without it.
pub async fn discover_plugin_groups(client: kube::Client) -> Result<Discovery> {
    let groups = [KUBEDB_GROUP, KUBEDB_OPS_GROUP, ARC_SQL_GROUP];
    match Discovery::new(client.clone())
        .filter(&groups)
        .run_aggregated()
        .await
    {
        // NB: a server without aggregated discovery answers /apis with a plain
        // APIGroupList, which parses as an empty aggregated list: no group we
        // want means "ask again the old way", not "nothing installed".
        Ok(d) if d.groups().next().is_some() => Ok(d),
        _ => retry(|| Discovery::new(client.clone()).filter(&groups).run())
            .await
            .map_err(|e| Error::api("discover the cluster's API groups", e)),
    }
}
