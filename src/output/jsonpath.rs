//! kubectl's JSONPath templates (`-o jsonpath=`, and the cells of `-o custom-columns=`),
//! applied to the document `-o json` prints.
//!
//! The template is text with `{...}` actions: a path (`{.items[*].metadata.name}`,
//! `{['kind']}`, `{..name}`, `{.users[?(@.name=="e2e")].user}`), a string literal
//! (`{"\n"}`), or `{range PATH}...{end}`. As kubectl prints it, the matches of one path
//! are separated by spaces, strings print raw and objects and lists as JSON; a field that
//! is missing prints nothing (kubectl's `--allow-missing-template-keys=true`).

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Path),
    Range(Path, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name`.
    Key(String),
    /// `['name']`, `['a.b', 'c']`: each quoted path (dots separate fields unless escaped,
    /// `['kubernetes\\.io/hostname']`) over every match, one path after the other.
    Union(Vec<Vec<String>>),
    /// `..name`: every `name` at any depth.
    Descend(String),
    /// `.*`, `[*]`.
    All,
    /// `[i]`, `[a:b:c]`.
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: Option<i64>,
        index: bool,
    },
    /// `[?(@.x == "y")]`, `[?(@.x)]`.
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    op: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Path),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Why a template does not parse: the message kubectl gives, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parses a kubectl JSONPath template.
    pub fn parse(template: &str) -> Result<Template, ParseError> {
        let fail = |why: &str| ParseError(format!("error parsing jsonpath {template}, {why}"));
        let mut stack: Vec<(Path, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let action_len =
                action_end(&rest[open + 1..]).ok_or_else(|| fail("unclosed action"))?;
            let action = rest[open + 1..open + 1 + action_len].trim();
            rest = &rest[open + 1 + action_len + 1..];
            if action == "end" {
                let (path, outer) = stack
                    .pop()
                    .ok_or_else(|| fail("not in range, nothing to end"))?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if let Some(p) = action.strip_prefix("range ") {
                let path = Parser::new(p.trim()).path_only().map_err(|e| fail(&e))?;
                stack.push((path, std::mem::take(&mut nodes)));
            } else if action.starts_with('"') {
                let mut p = Parser::new(action);
                let s = p.string().map_err(|e| fail(&e))?;
                if !p.done() {
                    return Err(fail(&format!("unexpected {:?} after a string", p.rest())));
                }
                nodes.push(Node::Text(s));
            } else if action.is_empty() {
                return Err(fail("empty action"));
            } else {
                let path = Parser::new(action).path_only().map_err(|e| fail(&e))?;
                nodes.push(Node::Path(path));
            }
        }
        if !stack.is_empty() {
            return Err(fail("unclosed range: missing {end}"));
        }
        Ok(Template { nodes })
    }

    /// The template's text for one document.
    pub fn render(&self, doc: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, doc, doc, &mut out);
        out
    }

    /// The values the template's paths match, in order (for `-o jsonpath-as-json`).
    pub fn values(&self, doc: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        collect_nodes(&self.nodes, doc, doc, &mut out);
        out
    }
}

/// The length of the action after a `{` up to its `}`, skipping quoted strings.
fn action_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

fn render_nodes(nodes: &[Node], root: &Value, cur: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Path(p) => {
                // NB: what the document holds came from the cluster: made printable as table
                // cells are, so a name cannot drive the terminal. The template's own text
                // (its "\n" and "\t" too) is printed as written.
                let texts: Vec<String> = p
                    .eval(root, cur)
                    .into_iter()
                    .map(|v| super::table::printable(&text(v)))
                    .collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(p, body) => {
                for v in range_items(p, root, cur) {
                    render_nodes(body, root, v, out);
                }
            }
        }
    }
}

fn collect_nodes(nodes: &[Node], root: &Value, cur: &Value, out: &mut Vec<Value>) {
    for n in nodes {
        match n {
            Node::Text(_) => {}
            Node::Path(p) => out.extend(p.eval(root, cur).into_iter().cloned()),
            Node::Range(p, body) => {
                for v in range_items(p, root, cur) {
                    collect_nodes(body, root, v, out);
                }
            }
        }
    }
}

/// What `{range PATH}` walks: each match, or the elements of a match that is a list.
fn range_items<'v>(p: &Path, root: &'v Value, cur: &'v Value) -> Vec<&'v Value> {
    let found = p.eval(root, cur);
    match found.as_slice() {
        [Value::Array(items)] => items.iter().collect(),
        _ => found,
    }
}

/// A match as kubectl prints it: strings raw, everything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Path {
    /// Every match of the path, from the root (`$`, the default) or the current item (`@`,
    /// and inside `range`).
    fn eval<'v>(&self, _root: &'v Value, cur: &'v Value) -> Vec<&'v Value> {
        let mut found = vec![cur];
        for step in &self.steps {
            let mut next = Vec::new();
            if let Step::Union(paths) = step {
                for keys in paths {
                    next.extend(
                        found
                            .iter()
                            .filter_map(|v| keys.iter().try_fold(*v, |v, k| v.get(k.as_str()))),
                    );
                }
            } else {
                for v in found {
                    step.apply(v, &mut next);
                }
            }
            found = next;
        }
        found
    }
}

impl Step {
    fn apply<'v>(&self, v: &'v Value, out: &mut Vec<&'v Value>) {
        match self {
            Step::Key(k) => out.extend(v.get(k.as_str())),
            Step::Union(_) => unreachable!("a union is applied to every match at once"),
            Step::Descend(key) => descend(v, key, out),
            Step::All => match v {
                Value::Array(a) => out.extend(a.iter()),
                Value::Object(m) => out.extend(m.values()),
                _ => {}
            },
            Step::Slice {
                start,
                end,
                step,
                index,
            } => {
                let Value::Array(a) = v else { return };
                let len = a.len() as i64;
                let at = |i: i64| if i < 0 { i + len } else { i };
                if *index {
                    let i = at(start.unwrap_or(0));
                    if (0..len).contains(&i) {
                        out.push(&a[i as usize]);
                    }
                    return;
                }
                let from = at(start.unwrap_or(0)).clamp(0, len);
                let to = at(end.unwrap_or(len)).clamp(0, len);
                let by = step.unwrap_or(1).max(1) as usize;
                if from < to {
                    out.extend(a[from as usize..to as usize].iter().step_by(by));
                }
            }
            Step::Filter(f) => {
                let items: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                out.extend(items.into_iter().filter(|item| f.holds(item)));
            }
        }
    }
}

fn descend<'v>(v: &'v Value, key: &str, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(key) {
                out.push(x);
            }
            for x in m.values() {
                descend(x, key, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                descend(x, key, out);
            }
        }
        _ => {}
    }
}

impl Filter {
    fn holds(&self, item: &Value) -> bool {
        let left = self.left.values(item);
        let Some((op, right)) = &self.op else {
            return !left.is_empty();
        };
        let right = right.values(item);
        left.iter()
            .any(|l| right.iter().any(|r| compare(l, *op, r)))
    }
}

impl Operand {
    fn values(&self, item: &Value) -> Vec<Value> {
        match self {
            Operand::Path(p) => p.eval(item, item).into_iter().cloned().collect(),
            Operand::Literal(v) => vec![v.clone()],
        }
    }
}

fn compare(l: &Value, op: Op, r: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        (_, None) => false,
    }
}

/// A cursor over one action's text.
struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn done(&self) -> bool {
        self.rest().trim().is_empty()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.at += prefix.len();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.at += n;
    }

    /// A whole path, nothing after it.
    fn path_only(&mut self) -> Result<Path, String> {
        let p = self.path()?;
        if !self.done() {
            return Err(format!(
                "unrecognized character in action: {:?}",
                self.rest()
            ));
        }
        Ok(p)
    }

    fn path(&mut self) -> Result<Path, String> {
        let _ = self.eat("$") || self.eat("@");
        let mut steps = Vec::new();
        loop {
            if self.eat("..") {
                if self.peek() == Some('[') {
                    return Err("recursive descent must be followed by a field name".into());
                }
                let name = self.ident()?;
                steps.push(Step::Descend(name));
            } else if self.eat(".") {
                if self.eat("*") {
                    steps.push(Step::All);
                } else if self.peek().is_none_or(|c| !is_ident(c)) {
                    // NB: `{.}` is the current object, as `{@}`.
                    if steps.is_empty() && self.done() {
                        break;
                    }
                    return Err("missing field name after '.'".into());
                } else {
                    steps.push(Step::Key(self.ident()?));
                }
            } else if self.eat("[") {
                steps.push(self.subscript()?);
            } else {
                break;
            }
        }
        Ok(Path { steps })
    }

    fn ident(&mut self) -> Result<String, String> {
        let mut name = String::new();
        let mut chars = self.rest().char_indices().peekable();
        let mut used = 0;
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if let Some((j, e)) = chars.next() {
                    name.push(e);
                    used = j + e.len_utf8();
                    continue;
                }
                return Err("a trailing '\\' in a field name".into());
            }
            if !is_ident(c) {
                break;
            }
            name.push(c);
            used = i + c.len_utf8();
        }
        if name.is_empty() {
            return Err(format!("expected a field name at {:?}", self.rest()));
        }
        self.at += used;
        Ok(name)
    }

    fn subscript(&mut self) -> Result<Step, String> {
        self.skip_spaces();
        let step = if self.eat("*") {
            Step::All
        } else if self.eat("?(") {
            let f = self.filter()?;
            self.skip_spaces();
            if !self.eat(")") {
                return Err("unclosed filter: missing ')'".into());
            }
            Step::Filter(Box::new(f))
        } else if matches!(self.peek(), Some('\'' | '"')) {
            let mut paths = vec![self.quoted_path()?];
            loop {
                self.skip_spaces();
                if !self.eat(",") {
                    break;
                }
                self.skip_spaces();
                paths.push(self.quoted_path()?);
            }
            Step::Union(paths)
        } else {
            self.slice()?
        };
        self.skip_spaces();
        if !self.eat("]") {
            return Err("unclosed subscript: missing ']'".into());
        }
        Ok(step)
    }

    fn slice(&mut self) -> Result<Step, String> {
        let mut parts: Vec<Option<i64>> = Vec::new();
        loop {
            self.skip_spaces();
            let digits: String = self
                .rest()
                .chars()
                .enumerate()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
                .map(|(_, c)| c)
                .collect();
            self.at += digits.len();
            parts.push(if digits.is_empty() {
                None
            } else {
                Some(
                    digits
                        .parse()
                        .map_err(|_| format!("bad array index {digits:?}"))?,
                )
            });
            self.skip_spaces();
            if !self.eat(":") {
                break;
            }
        }
        match parts.as_slice() {
            [Some(i)] => Ok(Step::Slice {
                start: Some(*i),
                end: None,
                step: None,
                index: true,
            }),
            [start, end] => Ok(Step::Slice {
                start: *start,
                end: *end,
                step: None,
                index: false,
            }),
            [start, end, step] => Ok(Step::Slice {
                start: *start,
                end: *end,
                step: *step,
                index: false,
            }),
            _ => Err(format!("unrecognized subscript at {:?}", self.rest())),
        }
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        let left = self.operand()?;
        self.skip_spaces();
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.eat(s));
        let op = match op {
            Some((_, op)) => {
                self.skip_spaces();
                Some((op, self.operand()?))
            }
            None => None,
        };
        Ok(Filter { left, op })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some('@' | '$' | '.') => Ok(Operand::Path(self.path()?)),
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.string()?))),
            _ => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                    .collect();
                self.at += word.len();
                match word.as_str() {
                    "true" => Ok(Operand::Literal(Value::Bool(true))),
                    "false" => Ok(Operand::Literal(Value::Bool(false))),
                    "null" | "nil" => Ok(Operand::Literal(Value::Null)),
                    w => serde_json::from_str::<serde_json::Number>(w)
                        .map(|n| Operand::Literal(Value::Number(n)))
                        .map_err(|_| format!("unrecognized filter operand {w:?}")),
                }
            }
        }
    }

    /// A quoted path of a union: fields separated by dots, `\\.` a dot in a field.
    fn quoted_path(&mut self) -> Result<Vec<String>, String> {
        let quote = self.peek().ok_or("expected a quoted string")?;
        self.at += 1;
        let (mut keys, mut key) = (Vec::new(), String::new());
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.at += i + 1;
                    keys.push(key);
                    return Ok(keys);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => key.push(e),
                    None => break,
                },
                '.' => keys.push(std::mem::take(&mut key)),
                c => key.push(c),
            }
        }
        Err("unterminated quoted string".into())
    }

    /// A quoted string, `"..."` or `'...'`, with `\n`, `\t`, `\\` and `\"` escapes.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a quoted string")?;
        self.at += 1;
        let mut s = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.at += i + 1;
                    return Ok(s);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => s.push('\n'),
                    Some((_, 't')) => s.push('\t'),
                    Some((_, 'r')) => s.push('\r'),
                    Some((_, e)) => s.push(e),
                    None => break,
                },
                c => s.push(c),
            }
        }
        Err("unterminated quoted string".into())
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '\\')
}

/// A custom-columns cell expression as kubectl relaxes it: `.a.b`, `{.a.b}` and `a.b` all
/// mean `{.a.b}`.
pub fn relaxed(expr: &str) -> Result<Template, ParseError> {
    let e = expr.trim();
    let inner = e
        .strip_prefix('{')
        .and_then(|e| e.strip_suffix('}'))
        .unwrap_or(e);
    let inner = if inner.starts_with('.') || inner.starts_with('[') || inner.starts_with('$') {
        inner.to_string()
    } else {
        format!(".{inner}")
    };
    Template::parse(&format!("{{{inner}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The input of kubectl's "JSONPath Support" reference page.
    fn doc() -> Value {
        json!({
          "kind": "List",
          "items": [
            {
              "kind": "None",
              "metadata": {
                "name": "127.0.0.1",
                "labels": {"kubernetes.io/hostname": "127.0.0.1"}
              },
              "status": {
                "capacity": {"cpu": "4"},
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]
              }
            },
            {
              "kind": "None",
              "metadata": {"name": "127.0.0.2"},
              "status": {
                "capacity": {"cpu": "8"},
                "addresses": [
                  {"type": "LegacyHostIP", "address": "127.0.0.2"},
                  {"type": "another", "address": "127.0.0.3"}
                ]
              }
            }
          ],
          "users": [
            {"name": "myself", "user": {}},
            {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
          ]
        })
    }

    fn run(t: &str) -> String {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .render(&doc())
    }

    #[test]
    fn the_reference_pages_examples() {
        assert_eq!(run("kind is {.kind}"), "kind is List");
        assert_eq!(run("{.kind}"), "List");
        assert_eq!(run("{['kind']}"), "List");
        assert_eq!(run("{$.kind}"), "List");
        assert_eq!(run("{..name}"), "127.0.0.1 127.0.0.2 myself e2e");
        assert_eq!(run("{.items[*].metadata.name}"), "127.0.0.1 127.0.0.2");
        assert_eq!(run("{.users[0].name}"), "myself");
        assert_eq!(
            run("{.items[*]['metadata.name', 'status.capacity']}"),
            // NB: the page shows Go's map[cpu:4]; kubectl prints objects as JSON.
            "127.0.0.1 127.0.0.2 {\"cpu\":\"4\"} {\"cpu\":\"8\"}"
        );
        assert_eq!(run("{.users[?(@.name==\"e2e\")].user.password}"), "secret");
        assert_eq!(
            run("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}"),
            "[127.0.0.1, {\"cpu\":\"4\"}] [127.0.0.2, {\"cpu\":\"8\"}] "
        );
        assert_eq!(
            run("{.items[*].metadata.labels['kubernetes\\.io/hostname']}"),
            "127.0.0.1"
        );
        assert_eq!(run("{.items[-1].metadata.name}"), "127.0.0.2");
        assert_eq!(run("{@.kind}"), "List");
        assert_eq!(Template::parse("{@}").unwrap().render(&json!(3)), "3");
    }

    #[test]
    fn string_literals_and_text_between_expressions() {
        assert_eq!(
            run("{range .items[*]}{.metadata.name}{\"\\t\"}{.status.capacity.cpu}{\"\\n\"}{end}"),
            "127.0.0.1\t4\n127.0.0.2\t8\n"
        );
        assert_eq!(run("a {\"}\"} b"), "a } b");
        assert_eq!(run("no actions"), "no actions");
    }

    #[test]
    fn indices_slices_and_filters() {
        assert_eq!(run("{.items[0].metadata.name}"), "127.0.0.1");
        assert_eq!(run("{.items[5].metadata.name}"), "");
        assert_eq!(
            run("{.items[1].status.addresses[0:2].type}"),
            "LegacyHostIP another"
        );
        assert_eq!(run("{.items[1].status.addresses[1:].address}"), "127.0.0.3");
        assert_eq!(
            run("{.items[?(@.status.capacity.cpu==\"8\")].metadata.name}"),
            "127.0.0.2"
        );
        assert_eq!(
            run("{.items[?(@.metadata.labels)].metadata.name}"),
            "127.0.0.1"
        );
        let nums = json!({"a": [{"n": 1}, {"n": 5}]});
        let t = Template::parse("{.a[?(@.n > 2)].n}").unwrap();
        assert_eq!(t.render(&nums), "5");
    }

    #[test]
    fn a_missing_field_prints_nothing() {
        assert_eq!(run("{.nope}"), "");
        assert_eq!(run("x{.items[*].nope.deeper}y"), "xy");
        assert_eq!(run("{range .nope[*]}{.x}{end}"), "");
    }

    #[test]
    fn values_and_booleans_print_as_kubectl_does() {
        let d = json!({"b": true, "n": 3, "s": "x", "l": [1, "a"], "z": null});
        let t = Template::parse("{.b} {.n} {.s} {.l} {.z}").unwrap();
        assert_eq!(t.render(&d), "true 3 x [1,\"a\"] null");
        assert_eq!(
            Template::parse("{.l[*]}").unwrap().values(&d),
            vec![json!(1), json!("a")]
        );
    }

    #[test]
    fn templates_that_do_not_parse_say_why_in_one_line() {
        for bad in [
            "{.items[",
            "{.items[*]",
            "{range .items[*]}{.x}",
            "{end}",
            "{.a b}",
            "{\"unterminated}",
            "{}",
            "{.items[?(@.x==]}",
            "{.a.}",
        ] {
            let e = Template::parse(bad).expect_err(bad);
            assert!(e.0.starts_with("error parsing jsonpath "), "{bad}: {e}");
            assert!(!e.0.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn custom_columns_expressions_are_relaxed() {
        for e in [".metadata.name", "{.metadata.name}", "metadata.name"] {
            assert_eq!(
                relaxed(e).unwrap().render(&doc()["items"][0]),
                "127.0.0.1",
                "{e}"
            );
        }
    }

    #[test]
    fn values_from_the_document_cannot_drive_the_terminal() {
        let doc = serde_json::json!({"name": "a\u{1b}]0;owned\u{7}b", "msg": "two\nlines"});
        let t = Template::parse(r#"{.name}{"\n"}{.msg}"#).unwrap();
        assert_eq!(t.render(&doc), "a\\u{1b}]0;owned\\u{7}b\ntwo lines");
    }
}
