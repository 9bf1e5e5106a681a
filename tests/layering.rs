//! The layers of `src/` import downward only, and no modules import each other in a cycle.
//!
//! Reads every `crate::...`, `super::...` and `self::...` path in `src/` (comments left
//! out) and fails on:
//! - an import of a top-level module that comes later in [`LAYERS`] (an upward import);
//! - a cycle among the files of `src/`, not counting a module's use of its own parent or
//!   ancestors (a backend using the trait it implements) nor a parent's use of its children.
//!
//! A new top-level module must be placed in [`LAYERS`], which is where the order is
//! written down (lib.rs and ARCHITECTURE.md describe it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, lowest first: each may import only those before it.
/// `lib.rs` and `main.rs` sit on top and may import anything.
const LAYERS: &[&str] = &[
    "duration", "error", "cli", "engines", "creds", "password", "tls", "target", "plan", "report",
    "model", "context", "api", "audit", "backend", "verify", "cmd", "output", "fanout",
];

/// A source file as a module path: `src/backend/kubedb/mod.rs` -> `["backend", "kubedb"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without `//` comments (doc comments name modules freely) and string contents.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = '\0';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' && !(prev == '\'' && chars.get(i + 1) == Some(&'\'')) {
                in_str = !in_str;
            }
            if !in_str {
                kept.push(c);
            }
            prev = c;
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::`, `super::` or `self::`, as segments; a `use`
/// group `a::{b, c::d}` yields `a::b` and `a::c::d`.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        let root = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|r| rest.starts_with(r));
        match root {
            Some(r) if starts_word => {
                let (segments, end) = read_path(&bytes, i + r.len());
                for s in segments {
                    found.push((r.trim_end_matches("::").to_string(), s));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

/// Reads `a::b::{c, d::e}` from `at`, returning each full path and where it ended.
fn read_path(chars: &[char], mut at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        while at < chars.len() && chars[at].is_whitespace() {
            at += 1;
        }
        if at < chars.len() && chars[at] == '{' {
            let mut out = Vec::new();
            at += 1;
            loop {
                while at < chars.len() && (chars[at].is_whitespace() || chars[at] == ',') {
                    at += 1;
                }
                if at >= chars.len() || chars[at] == '}' {
                    return (out, at + 1);
                }
                let (inner, end) = read_path(chars, at);
                for p in inner {
                    out.push(prefix.iter().cloned().chain(p).collect());
                }
                if end == at {
                    return (out, at + 1);
                }
                at = end;
            }
        }
        let start = at;
        while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
            at += 1;
        }
        if start == at {
            return (vec![prefix], at);
        }
        prefix.push(chars[start..at].iter().collect());
        if chars.get(at) == Some(&':') && chars.get(at + 1) == Some(&':') {
            at += 2;
        } else {
            return (vec![prefix], at);
        }
    }
}

/// The longest prefix of `path` that names a module file, as a module path.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

struct Src {
    /// Module path -> the modules it imports.
    imports: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_src() -> Src {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let texts: Vec<(Vec<String>, String)> = files
        .iter()
        .map(|f| {
            (
                module_of(&src, f),
                std::fs::read_to_string(f).expect("read"),
            )
        })
        .collect();
    let modules: BTreeSet<Vec<String>> = texts.iter().map(|(m, _)| m.clone()).collect();
    let mut imports: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &texts {
        let entry = imports.entry(module.clone()).or_default();
        for (root, segments) in paths(&code_only(text)) {
            let mut full = match root.as_str() {
                "crate" => Vec::new(),
                "self" => module.clone(),
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            };
            // `super::super::x`: one more level up per `super`.
            let mut segments = segments.as_slice();
            while segments.first().is_some_and(|s| s == "super") {
                full.pop();
                segments = &segments[1..];
            }
            full.extend(segments.iter().cloned());
            if let Some(target) = resolve(&full, &modules) {
                if &target != module && !target.is_empty() {
                    entry.insert(target);
                }
            }
        }
    }
    Src { imports }
}

fn rank(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|l| l == top)
}

#[test]
fn every_top_level_module_is_placed_in_a_layer() {
    let src = read_src();
    let unplaced: BTreeSet<&String> = src
        .imports
        .keys()
        .filter_map(|m| m.first())
        .filter(|top| !LAYERS.contains(&top.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "place these modules in LAYERS (tests/layering.rs): {unplaced:?}"
    );
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let src = read_src();
    let mut upward = Vec::new();
    for (module, targets) in &src.imports {
        let Some(own) = rank(module) else { continue };
        for t in targets {
            if rank(t).is_some_and(|r| r > own) {
                upward.push(format!("{} -> {}", module.join("::"), t.join("::")));
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let src = read_src();
    // A module's own ancestors and descendants are not edges: a parent declares its
    // children, and a child may use what its parent defines for it.
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let edges: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = src
        .imports
        .iter()
        .map(|(m, ts)| (m, ts.iter().filter(|t| !related(m, t)).collect()))
        .collect();
    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a Vec<String>,
        edges: &BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(m, 1);
        stack.push(m);
        for t in edges.get(m).into_iter().flatten() {
            match state.get(t) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == t).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.join("::")).collect();
                    cycle.push(t.join("::"));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(t, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m, 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            if let Some(cycle) = visit(m, &edges, &mut state, &mut Vec::new()) {
                panic!("import cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn the_reader_sees_grouped_relative_and_nested_paths() {
    let code = code_only(
        "use crate::api::{read::get, watch::{follow, bounded}};\n\
         let x = super::super::plan::Plan::new(); // crate::output::never\n\
         let s = \"crate::cmd::in_a_string\";",
    );
    let found: Vec<String> = paths(&code)
        .into_iter()
        .map(|(r, s)| format!("{r}::{}", s.join("::")))
        .collect();
    assert_eq!(
        found,
        [
            "crate::api::read::get",
            "crate::api::watch::follow",
            "crate::api::watch::bounded",
            "super::super::plan::Plan::new",
        ]
    );
}
