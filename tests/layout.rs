//! The shape of the source, kept by a test because it is what lets a reader trust a path:
//! - a file under `src/init/` runs as PID 1 (or as its applets and module helper), one under
//!   `src/host/` on the build host, one at the top in both. `init` and `host` use the top,
//!   never each other, and the top uses neither.
//! - the `host` feature gates exactly one thing: `src/host/`.
//! - no module uses one that uses it back, directly or through others.
//! - no source file is over 800 lines and no function over 80.
//!
//! Read from the `use` lines and paths of the sources themselves (`crate::`, `super::`, and a
//! module's own children by name), without the test modules, which may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 80;

/// A module's path from the crate root: `["init", "boot"]` for src/init/boot.rs.
type ModPath = Vec<String>;

struct Source {
    file: PathBuf,
    module: ModPath,
    /// The text up to its test module, if any.
    code: String,
    lines: usize,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|file| {
            let rel = file.strip_prefix(&src).unwrap().with_extension("");
            let mut module: ModPath = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = fs::read_to_string(&file).unwrap();
            let lines = text.lines().count();
            Source {
                file,
                module,
                code: without_tests(&text),
                lines,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code before `#[cfg(test)] mod tests`, without comments (whose prose names modules).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The modules each module's code refers to, resolved to the files that exist.
fn uses(sources: &[Source]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let known: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for s in sources {
        let mut targets = BTreeSet::new();
        for path in paths_in(&s.code, &s.module, &known) {
            // The longest prefix that is a file: `crate::init::boot::run` -> init/boot.rs.
            if let Some(target) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| known.contains(p))
            {
                if target != s.module {
                    targets.insert(target);
                }
            }
        }
        graph.insert(s.module.clone(), targets);
    }
    graph
}

/// Every path the code names from the crate's root, `super` or one of the module's children,
/// as segments from the crate root; `use a::{b, c::d}` is expanded.
fn paths_in(code: &str, module: &ModPath, known: &BTreeSet<ModPath>) -> Vec<ModPath> {
    let children: BTreeSet<&str> = known
        .iter()
        .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
        .filter_map(|k| k.last().map(String::as_str))
        .collect();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_word =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[i - 1]));
        if at_word && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
            let (path, end) = read_path(code, i);
            if path.len() > 1 || path.iter().any(|p| p.contains('{')) {
                for expanded in expand(&path) {
                    if let Some(abs) = absolute(&expanded, module, &children) {
                        found.push(abs);
                    }
                }
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// A path starting at `start`: `a::b::{c, d::e}` as segments, the last possibly a group.
fn read_path(code: &str, start: usize) -> (Vec<String>, usize) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        if bytes.get(i) == Some(&b'{') {
            let mut depth = 0;
            let from = i;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            segments.push(code[from..i].to_owned());
            return (segments, i);
        }
        let from = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if from == i {
            return (segments, i);
        }
        segments.push(code[from..i].to_owned());
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            return (segments, i);
        }
    }
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &[String]) -> Vec<Vec<String>> {
    let Some((last, head)) = path.split_last() else {
        return Vec::new();
    };
    let Some(inner) = last.strip_prefix('{').and_then(|l| l.strip_suffix('}')) else {
        return vec![path.to_vec()];
    };
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[from..]);
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let item = item.split(" as ").next().unwrap_or(item);
        let (sub, _) = read_path(item, 0);
        for tail in expand(&sub) {
            let mut p = head.to_vec();
            if tail != ["self"] {
                p.extend(tail);
            }
            out.push(p);
        }
    }
    out
}

/// A path made absolute (from the crate root), or `None` for std, other crates and locals.
fn absolute(path: &[String], module: &ModPath, children: &BTreeSet<&str>) -> Option<ModPath> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut m = module.clone();
            m.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                m.pop()?;
                rest = &rest[1..];
            }
            m.extend(rest.iter().cloned());
            return Some(m);
        }
        child if children.contains(child) => {
            let mut m = module.clone();
            m.push(child.to_owned());
            m
        }
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Which program a module belongs to.
fn side(module: &ModPath) -> &'static str {
    match module.first().map(String::as_str) {
        Some("init") => "init",
        Some("host") => "host",
        _ => "shared",
    }
}

#[test]
fn init_and_host_use_the_shared_top_and_never_each_other() {
    let sources = sources();
    let graph = uses(&sources);
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let allowed = match (side(from), side(to)) {
                (a, b) if a == b => true,
                (_, "shared") => true,
                _ => false,
            };
            if !allowed {
                wrong.push(format!(
                    "{} ({}) uses {} ({})",
                    from.join("::"),
                    side(from),
                    to.join("::"),
                    side(to)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across sides:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let graph = uses(&sources());
    // Depth-first search; a back edge closes a circle, printed from its start.
    fn visit<'a>(
        node: &'a ModPath,
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<&'a ModPath, bool>,
        stack: &mut Vec<&'a ModPath>,
        circles: &mut Vec<String>,
    ) {
        state.insert(node, false);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                None => visit(next, graph, state, stack, circles),
                Some(false) => {
                    let from = stack.iter().position(|n| *n == next).unwrap_or(0);
                    let mut circle: Vec<String> =
                        stack[from..].iter().map(|m| m.join("::")).collect();
                    circle.push(next.join("::"));
                    circles.push(circle.join(" -> "));
                }
                Some(true) => {}
            }
        }
        stack.pop();
        state.insert(node, true);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for node in graph.keys() {
        if !state.contains_key(node) {
            visit(node, &graph, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(circles.is_empty(), "circles:\n{}", circles.join("\n"));
}

#[test]
fn the_host_feature_gates_one_folder() {
    let mut gates = Vec::new();
    for s in sources() {
        let text = fs::read_to_string(&s.file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("feature = \"host\"") {
                gates.push(format!("{}:{}: {}", s.file.display(), n + 1, line.trim()));
            }
        }
    }
    assert_eq!(gates.len(), 1, "{gates:#?}");
    let lib = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[cfg(feature = \"host\")]\npub mod host;"),
        "lib.rs must gate `pub mod host;` and nothing else"
    );
}

#[test]
fn rooms_are_small() {
    let mut big = Vec::new();
    for s in sources() {
        if s.lines > MAX_FILE_LINES {
            big.push(format!("{}: {} lines", s.file.display(), s.lines));
        }
        let text = fs::read_to_string(&s.file).unwrap();
        for (name, start, lines) in functions(&text) {
            if lines > MAX_FN_LINES {
                big.push(format!(
                    "{}:{start}: fn {name} is {lines} lines",
                    s.file.display()
                ));
            }
        }
    }
    assert!(big.is_empty(), "over the limits:\n{}", big.join("\n"));
}

/// Each function with a body: its name, first line (1-based) and length in lines, from its
/// signature to the closing brace at the signature's indentation (rustfmt's layout).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("unsafe ")
            .trim_start_matches("extern \"C\" ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // Up to the line that opens the body; a `;` first means there is none.
        let Some(open) = lines[i..]
            .iter()
            .position(|l| l.contains('{') || l.trim_end().ends_with(';'))
            .map(|n| i + n)
        else {
            continue;
        };
        if !lines[open].contains('{') {
            continue;
        }
        if lines[open].trim_end().ends_with('}') {
            out.push((name, i + 1, open - i + 1));
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[open..].iter().position(|l| l.trim_end() == close) {
            out.push((name, i + 1, open + end - i + 1));
        }
    }
    out
}

#[test]
fn the_checks_find_what_they_look_for() {
    // A circle and a crossing written the ways the sources write paths.
    let known: BTreeSet<ModPath> = [
        vec![],
        vec!["init".to_owned()],
        vec!["init".to_owned(), "a".to_owned()],
        vec!["host".to_owned()],
        vec!["host".to_owned(), "b".to_owned()],
    ]
    .into_iter()
    .collect();
    let init_a = vec!["init".to_owned(), "a".to_owned()];
    let found = paths_in(
        "use crate::{host::b::{self, X}, cmdline};\nfn f() { super::a::g(); }",
        &init_a,
        &known,
    );
    assert!(
        found.contains(&vec!["host".into(), "b".into()]),
        "{found:?}"
    );
    assert!(found.contains(&vec!["host".into(), "b".into(), "X".into()]));
    assert!(found.contains(&vec!["cmdline".into()]));
    assert!(found.contains(&vec!["init".into(), "a".into(), "g".into()]));
    // A module's children by name.
    let found = paths_in("fn f() { a::probe(); }", &vec!["init".to_owned()], &known);
    assert_eq!(
        found,
        vec![vec!["init".to_owned(), "a".into(), "probe".into()]]
    );
    // Functions and their lengths.
    let text =
        "fn a() {\n    x();\n}\n\npub fn b(\n    y: u8,\n) {\n}\nfn c();\n    fn d() {}\n}\n";
    assert_eq!(
        functions(text),
        vec![
            ("a".to_owned(), 1, 3),
            ("b".to_owned(), 5, 4),
            ("d".to_owned(), 10, 1)
        ]
    );
    // Test modules and comments are not code.
    let code = without_tests("use a; // crate::x\n#[cfg(test)]\nmod tests {\n use crate::y;\n}\n");
    assert_eq!(code, "use a; \n");
}
