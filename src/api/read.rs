//! Reads: one object by name (the target, a Secret, a Secret without its values) and paged
//! LISTs, decoded into the typed model or kept dynamic. Every read is retried on
//! transient errors; a 404 says where the plugin looked and what to do.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use std::collections::BTreeMap;

use super::discovery::{discover, Wanted};
use super::retry;
use crate::context::Ctx;
use crate::creds;
use crate::error::{status_code, Error, Result};
use crate::model::secret::SecretSummary;
use crate::model::DbItem;
use crate::target::Target;

/// Reads the target in `ns`; a 404 becomes a [`Error::NotFound`] that says where we looked
/// and how to list what is there.
pub async fn get_target(
    api: &Api<DynamicObject>,
    target: &Target,
    ns: &str,
) -> Result<DynamicObject> {
    let name = target.name.as_str();
    match retry(|| api.get_opt(name)).await {
        Ok(Some(obj)) => Ok(obj),
        Ok(None) => Err(Error::NotFound {
            what: format!("{} {name:?} in namespace {ns:?}", target.engine.singular()),
            hint: Some(format!(
                "list them with `kubectl rotate list -n {ns}` or `kubectl get {} -n {ns}`",
                target.engine.short()
            )),
        }),
        Err(e) => Err(Error::api(
            format!("get {} {ns}/{name}", target.engine.resource()),
            e,
        )),
    }
}

/// A database and its credential Secret's data, as `prev` and `verify` read them.
pub struct CredentialSecret {
    /// The database, in the typed model.
    pub db: DbItem,
    /// The credential Secret's name (KubeDB's auth Secret, Arc's admin login Secret).
    pub name: String,
    /// Its data, decoded (values that are not UTF-8 left out).
    pub data: BTreeMap<String, String>,
}

/// Reads the target in `ns` and its credential Secret (two GETs after discovery).
pub async fn read_credential_secret(
    ctx: &Ctx,
    ns: &str,
    target: &Target,
) -> Result<CredentialSecret> {
    let ar = discover(ctx, &[Wanted::engine(target.engine)])
        .await?
        .remove(0);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let db = DbItem::from_dynamic(&get_target(&api, target, ns).await?);
    let name = db.credential_secret(target.engine).ok_or_else(|| {
        Error::Unexpected(format!(
            "{target} names no admin login Secret (spec.security.adminLoginSecret)"
        ))
    })?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let hint = format!("{target} refers to it, but it does not exist");
    let secret = get_secret(&secrets, ns, &name, &hint).await?;
    Ok(CredentialSecret {
        db,
        name,
        data: creds::decode_data(secret.data.as_ref()),
    })
}

/// Reads a Secret; `None` when it does not exist.
pub async fn get_secret_opt(api: &Api<Secret>, ns: &str, name: &str) -> Result<Option<Secret>> {
    retry(|| api.get_opt(name))
        .await
        .map_err(|e| Error::api(format!("get secret {ns}/{name}"), e))
}

/// Reads a Secret that must exist; a 404 says so, with `hint` saying what to do.
pub async fn get_secret(api: &Api<Secret>, ns: &str, name: &str, hint: &str) -> Result<Secret> {
    get_secret_opt(api, ns, name)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("secret {name:?} in namespace {ns:?}"),
            hint: Some(hint.to_string()),
        })
}

/// Reads one Secret without its values (key names and certificate expiry only); `None`
/// when it does not exist.
pub async fn get_secret_summary(ctx: &Ctx, ns: &str, name: &str) -> Result<Option<SecretSummary>> {
    let url = format!("/api/v1/namespaces/{ns}/secrets");
    let got = retry(|| async {
        let req = kube::core::Request::new(&url)
            .get(name, &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        ctx.client.request::<SecretSummary>(req).await
    })
    .await;
    match got {
        Ok(s) => Ok(Some(s)),
        Err(e) if status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(Error::api(format!("get secret {ns}/{name}"), e)),
    }
}

/// One LIST page, decoded into only the fields `T` keeps.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(default)]
    metadata: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// LISTs `path` (a collection URL, e.g. `/apis/kubedb.com/v1/postgreses`) page by page
/// (`--chunk-size` items each, or all in one request when it is 0), handing each item to
/// `keep`. Each page is decoded into `T`, a struct of the few fields we need, as its bytes
/// arrive ([`decode_stream`]): the answer as a whole is never in memory, so one request
/// for a big list costs no more memory than pages would.
pub async fn list_pages<T: DeserializeOwned + Send + 'static>(
    ctx: &Ctx,
    path: &str,
    selector: Option<&str>,
    fields: Option<&str>,
    mut keep: impl FnMut(T),
) -> Result<String> {
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default();
        if ctx.chunk_size > 0 {
            lp = lp.limit(ctx.chunk_size);
        }
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page: Page<T> = retry(|| async {
            let req = kube::core::Request::new(path)
                .list(&lp)
                .map_err(kube::Error::BuildRequest)?;
            decode_stream::<Page<T>>(ctx.client.request_stream(req).await?).await
        })
        .await
        .map_err(|e| Error::api(format!("list {path}"), e))?;
        page.items.into_iter().for_each(&mut keep);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(page.metadata.resource_version.unwrap_or_default()),
        }
    }
}

/// Decodes a JSON answer while it is read: the bytes go, chunk by chunk, to a blocking
/// thread that runs serde_json's streaming reader, so at most a few chunks and the decoded
/// value are held, never the whole body (kube's `request` holds the body twice over: as
/// bytes and as a string).
pub async fn decode_stream<T: DeserializeOwned + Send + 'static>(
    body: impl futures::AsyncBufRead + Unpin,
) -> std::result::Result<T, kube::Error> {
    use futures::AsyncReadExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
    let decoder = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx: &mut rx,
            chunk: Vec::new(),
            at: 0,
        };
        serde_json::from_reader::<_, T>(std::io::BufReader::with_capacity(64 * 1024, reader))
    });
    let mut body = body;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = body.read(&mut buf).await;
        let end = matches!(read, Ok(0) | Err(_));
        // NB: a decoder that has stopped (bad JSON) has dropped the receiver: stop too.
        if tx.send(read.map(|n| buf[..n].to_vec())).await.is_err() || end {
            break;
        }
    }
    drop(tx);
    match decoder.await {
        Ok(decoded) => decoded.map_err(kube::Error::SerdeError),
        Err(e) => Err(kube::Error::Service(Box::new(e))),
    }
}

/// The blocking side of [`decode_stream`]: the chunks as one `Read`.
struct ChunkReader<'a> {
    rx: &'a mut tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The collection URL of a resource, in one namespace or (None) in all.
pub fn collection_url(ar: &ApiResource, namespace: Option<&str>) -> String {
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

/// Lists every object matching `lp` (its label and field selectors) through `api`, page by
/// page, with the list's resourceVersion (where a watch that must miss nothing starts).
pub async fn list_all_rv(
    ctx: &Ctx,
    api: &Api<DynamicObject>,
    lp: &ListParams,
) -> Result<(Vec<DynamicObject>, String)> {
    let mut items = Vec::new();
    let rv = list_pages(
        ctx,
        api.resource_url(),
        lp.label_selector.as_deref(),
        lp.field_selector.as_deref(),
        |o: DynamicObject| items.push(o),
    )
    .await?;
    Ok((items, rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_answer_decodes_as_a_whole_one_and_bad_json_is_an_error() {
        // Bigger than a chunk, so it crosses several.
        let items: Vec<String> = (0..5000)
            .map(|i| format!(r#"{{"metadata":{{"name":"db-{i}","namespace":"ns"}}}}"#))
            .collect();
        let body = format!(
            r#"{{"kind":"PostgresList","items":[{}],"metadata":{{"resourceVersion":"42"}}}}"#,
            items.join(",")
        );
        assert!(body.len() > 3 * 64 * 1024);
        let page: Page<DbItem> = decode_stream(futures::io::Cursor::new(body.into_bytes()))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 5000);
        assert_eq!(page.items[4999].metadata.name, "db-4999");
        assert_eq!(page.metadata.resource_version.as_deref(), Some("42"));
        let bad =
            decode_stream::<Page<DbItem>>(futures::io::Cursor::new(b"{\"items\": [".to_vec()))
                .await;
        assert!(matches!(bad, Err(kube::Error::SerdeError(_))));
    }

    #[test]
    fn collection_urls_follow_the_api_layout() {
        let ar = ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kubedb.com", "v1", "Postgres"),
            "postgreses",
        );
        assert_eq!(collection_url(&ar, None), "/apis/kubedb.com/v1/postgreses");
        assert_eq!(
            collection_url(&ar, Some("demo")),
            "/apis/kubedb.com/v1/namespaces/demo/postgreses"
        );
        let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        assert_eq!(
            collection_url(&secrets, Some("demo")),
            "/api/v1/namespaces/demo/secrets"
        );
    }
}
