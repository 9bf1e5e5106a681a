//! `kubectl rotate version`: what this binary is, from the build (see build.rs).

use std::io::Write;

use serde_json::json;

use super::{to_json, to_yaml, Style};
use crate::cli::Format;
use crate::error::Result;

/// The version facts, as `-o json|yaml` print them: a Kubernetes-style object.
pub fn document() -> serde_json::Value {
    json!({
        "apiVersion": "rotate.kubectl.dev/v1",
        "kind": "Version",
        "metadata": {"name": "kubectl-rotate"},
        "version": env!("CARGO_PKG_VERSION"),
        "gitCommit": env!("ROTATE_GIT_COMMIT"),
        "buildDate": env!("ROTATE_BUILD_DATE"),
        "target": env!("ROTATE_TARGET"),
    })
}

/// Prints the version in `style`.
pub fn print(style: Style, out: &mut dyn Write) -> Result<()> {
    let v = document();
    match style.format {
        Format::Json => writeln!(out, "{}", to_json(&v)?)?,
        Format::Yaml => write!(out, "{}", to_yaml(&v)?)?,
        Format::Name => writeln!(out, "version/kubectl-rotate")?,
        Format::Table | Format::Wide => {
            for (label, key) in [
                ("Version", "version"),
                ("GitCommit", "gitCommit"),
                ("BuildDate", "buildDate"),
                ("Target", "target"),
            ] {
                writeln!(out, "{label}: {}", v[key].as_str().unwrap_or_default())?;
            }
        }
    }
    Ok(())
}
