//! The README's engines table is the engine table's own: generated here from
//! `engines::ENGINES` and the login clients, so the two cannot drift apart. On a mismatch
//! the test prints the table to paste between the README's `engines` markers.

use kubectl_rotate::engines::{Mechanism, PrevLayout, ENGINES};

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn table() -> String {
    let mut t = String::from(
        "| TYPE | kind | rotated by | rotate | rollback | prev | verify |\n|---|---|---|---|---|---|---|\n",
    );
    let mut rows: Vec<_> = ENGINES.iter().collect();
    rows.sort_by_key(|e| e.kind);
    for e in rows {
        let arc = matches!(e.mechanism, Mechanism::Arc);
        let keeps_prev = arc || e.prev != PrevLayout::None;
        let verify = kubectl_rotate::verify::route(e).is_some();
        t.push_str(&format!(
            "| `{}` | {} | {} | yes | {} | {} | {} |\n",
            e.short(),
            e.kind,
            if arc {
                "Arc: a new credentials generation"
            } else {
                "KubeDB: a RotateAuth ops request"
            },
            yes(keeps_prev),
            yes(keeps_prev),
            yes(verify)
        ));
    }
    t
}

#[test]
fn the_readme_engines_table_is_the_engine_tables_own() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- engines -->\n")
        .expect("the README has an <!-- engines --> marker")
        + "<!-- engines -->\n".len();
    let end = readme[start..]
        .find("<!-- /engines -->")
        .expect("and an <!-- /engines --> marker")
        + start;
    let want = table();
    assert!(
        readme[start..end] == want,
        "the README's engines table is out of date; paste this between the markers:\n{want}"
    );
}
