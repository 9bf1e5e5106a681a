//! Lists and server-side Tables: label and field selectors, `limit`/`continue` paging
//! with opaque continue tokens, and the Table rendering (Name, printer columns, Age) that
//! `kubectl get` asks for with `as=Table`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{at_version, json_response, Query, Reply, Target};
use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::Shared;

/// Continue tokens: base64 of `{"rv": N, "start": "ns/name"}` (opaque to clients).
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(
            &json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}),
        )
        .unwrap_or_default(),
    )
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

/// A collection GET: the matching objects, one page at a time, as a list or a Table.
pub(super) fn list(shared: &Arc<Shared>, t: &Target, query: &Query, table: bool) -> Reply {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(tok) => Some(decode_continue(tok)?),
        None => None,
    };
    let ns_filter = if t.def.namespaced {
        t.namespace.as_deref()
    } else {
        None
    };
    let mut items: Vec<Value> = Vec::new();
    let mut more = false;
    let mut remaining: u64 = 0;
    let rv = shared.store.scan(
        t.def,
        ns_filter,
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        |o| {
            if !labels.matches(o) || !fields.matches(o) {
                return true;
            }
            if items.len() < limit {
                items.push(o.clone());
            } else {
                more = true;
                remaining += 1;
            }
            true
        },
    );
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more {
        let last = items.last().expect("a full page has items");
        meta["continue"] = json!(encode_continue(
            rv,
            last["metadata"]["namespace"].as_str().unwrap_or(""),
            last["metadata"]["name"].as_str().unwrap_or("")
        ));
        meta["remainingItemCount"] = json!(remaining);
    } else if t.def.custom {
        meta["continue"] = json!("");
    }
    if table {
        let mut tb = to_table(t.def, &items, query, rv);
        // NB: a Table names `continue` only when there is a next page (transcript 14).
        if !more {
            if let Some(m) = meta.as_object_mut() {
                m.remove("continue");
            }
        }
        tb["metadata"] = meta;
        return Ok(json_response(200, &tb));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| at_version(o, t.def, &t.version))
        .collect();
    Ok(json_response(
        200,
        &json!({"apiVersion": t.def.group_version(&t.version), "items": items, "kind": t.def.list_kind(), "metadata": meta}),
    ))
}

fn age_of(obj: &Value) -> Value {
    let Some(ts) = obj["metadata"]["creationTimestamp"].as_str() else {
        return json!("<unknown>");
    };
    match ts.parse::<jiff::Timestamp>() {
        // The same formatter the plugin prints ages with: kubectl's HumanDuration.
        Ok(t) => json!(rotate_duration::human_secs(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        Err(_) => json!("<unknown>"),
    }
}

fn dig<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = match cur.get(seg) {
            Some(v) => v,
            None => return &Value::Null,
        };
    }
    cur
}

/// One printer column's cell: an `Age` column is the object's age, `len:<path>` the length
/// of a list, a reference (RBAC's `roleRef`) prints as `Kind/name`, anything else as the
/// value at its path.
fn cell(obj: &Value, c: &crate::registry::Column) -> Value {
    if c.name == "Age" {
        return age_of(obj);
    }
    // A count: `len:<path>`, the length of the list there (0 when unset).
    if let Some(p) = c.path.strip_prefix("len:") {
        return json!(dig(obj, p).as_array().map_or(0, Vec::len));
    }
    // A `ready/desired` column (a workload's Ready): two integer paths, 0 when unset.
    if let Some((a, b)) = c.path.split_once('/') {
        let n = |p: &str| dig(obj, p).as_i64().unwrap_or(0);
        return json!(format!("{}/{}", n(a), n(b)));
    }
    match dig(obj, c.path) {
        Value::Object(r) if r.contains_key("kind") && r.contains_key("name") => json!(format!(
            "{}/{}",
            r["kind"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("")
        )),
        v => v.clone(),
    }
}

/// Render objects as a `meta.k8s.io/v1` Table: Name, the kind's printer columns, Age (unless
/// the kind shows its dates itself: RBAC's); each row carries the whole object only with
/// `includeObject=Object`.
pub(super) fn to_table(def: &ResourceDef, items: &[Value], query: &Query, rv: u64) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &def.columns {
        cols.push(json!({"name": c.name, "type": c.ty, "format": "", "description": format!("Custom resource definition column (in JSONPath format): .{}", c.path.trim_start_matches("len:")), "priority": 0}));
    }
    let age_last = !def.columns.iter().any(|c| c.ty == "date");
    if age_last {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp", "priority": 0}));
    }
    let full = query.get("includeObject") == Some("Object");
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &def.columns {
                cells.push(cell(o, c));
            }
            if age_last {
                cells.push(age_of(o));
            }
            let object = if full {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()})
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": cols, "rows": rows})
}
