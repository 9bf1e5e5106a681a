//! What krew-release-bot makes of `.krew.yaml` when a release is published.
//!
//! The bot (rajatjindal/krew-release-bot, pkg/source/template.go) runs the file through
//! Go's text/template with the release's `TagName` and a function `addURIAndSha URL TAG`,
//! which renders URL as a template of its own (`{{ .TagName }}`), downloads it and prints
//! `uri: URL`, a newline, and `    sha256: SHA` (four spaces in). This is that rendering for
//! the actions our template uses; any other action panics, so a template that needs more
//! than this fails the test instead of being rendered wrong.

/// The index just past the `}}` closing the action that opens at `start`, skipping `}}`
/// inside double-quoted strings (the URL argument holds `{{ .TagName }}`).
fn action_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = start + 2;
    let mut quoted = false;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted && bytes[i + 1] == b'}' => return i + 2,
            _ => {}
        }
        i += 1;
    }
    panic!("unclosed action at byte {start}: {}", &text[start..]);
}

/// The URL argument of `addURIAndSha "URL" .TagName`, rendered for `tag`.
fn uri_argument(args: &str, tag: &str) -> String {
    let url = args
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix("\" .TagName"))
        .unwrap_or_else(|| panic!("addURIAndSha wants \"URL\" .TagName, got {args}"));
    let url = url.replace("{{ .TagName }}", tag);
    assert!(!url.contains("{{"), "unsupported action in the URL {url}");
    url
}

/// `template` rendered for the release `tag`; `sha256_of_uri` stands for the bot's
/// download of each archive.
pub fn render(template: &str, tag: &str, sha256_of_uri: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = action_end(rest, start);
        let mut action = &rest[start + 2..end - 2];
        out.push_str(&rest[..start]);
        rest = &rest[end..];
        // Trim markers: `{{- ` eats the blanks before the action, ` -}}` those after.
        if let Some(a) = action.strip_prefix("- ") {
            out.truncate(out.trim_end().len());
            action = a;
        }
        if let Some(a) = action.strip_suffix(" -") {
            rest = rest.trim_start();
            action = a;
        }
        let action = action.trim();
        if action.starts_with("/*") && action.ends_with("*/") {
            continue; // a comment
        }
        if action == ".TagName" {
            out.push_str(tag);
        } else if let Some(args) = action.strip_prefix("addURIAndSha ") {
            let uri = uri_argument(args.trim(), tag);
            let sha = sha256_of_uri(&uri);
            out.push_str(&format!("uri: {uri}\n    sha256: {sha}"));
        } else {
            panic!("krew_bot::render does not know the action {{{{{action}}}}}");
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn renders_the_actions_as_the_bot_does() {
    let template = "{{- /* a note\nover lines */ -}}\nversion: {{ .TagName }}\n  - x: 1\n    \
                    {{ addURIAndSha \"https://h/d/{{ .TagName }}/a_{{ .TagName }}.zip\" .TagName }}\n    bin: a\n";
    let got = render(template, "v1.2.3", &|uri| {
        assert_eq!(uri, "https://h/d/v1.2.3/a_v1.2.3.zip");
        "ab".repeat(32)
    });
    assert_eq!(
        got,
        format!(
            "version: v1.2.3\n  - x: 1\n    uri: https://h/d/v1.2.3/a_v1.2.3.zip\n    sha256: {}\n    bin: a\n",
            "ab".repeat(32)
        )
    );
}

#[test]
#[should_panic(expected = "does not know the action")]
fn refuses_actions_it_does_not_know() {
    render("version: {{ .Version }}\n", "v1.0.0", &|_| unreachable!());
}
