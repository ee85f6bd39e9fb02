//! The layering of ARCHITECTURE.md ("Layers"), checked on the source: a
//! top-level module imports only modules of lower layers (or the few
//! same-layer ones the table allows), so folders never import each other in
//! a cycle. Test code (`tests.rs` files, `#[cfg(test)] mod tests { … }`) and
//! comments are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first, as in ARCHITECTURE.md.
const LAYERS: &[&[&str]] = &[
    &[
        "xml", "mime", "address", "pki", "keyfile", "listen", "clock", "metrics", "cpu_pool",
    ],
    &["config", "logging"],
    &["store"],
    &["identity", "trust", "tls", "audit"],
    &[
        "threads",
        "access",
        "dossier",
        "agenda",
        "lifecycle",
        "directory",
        "services",
    ],
    &["delivery"],
    &["smtp", "imap", "web", "relay", "bench"],
    &["server", "cli"],
];

/// Imports allowed inside one layer: (importer, imported).
const SAME_LAYER: &[(&str, &str)] = &[
    ("mime", "address"),
    ("listen", "metrics"),
    ("logging", "config"),
    ("identity", "trust"),
    ("access", "threads"),
    ("dossier", "threads"),
    ("agenda", "threads"),
    ("lifecycle", "threads"),
    ("lifecycle", "access"),
    ("lifecycle", "dossier"),
    ("services", "threads"),
    ("cli", "server"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::x` paths a file's non-test code names, `x` a top-level module.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let s = line.trim();
        if s.starts_with("#[cfg(test)]") {
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            if next.starts_with("mod ") && next.ends_with('{') {
                break;
            }
            continue;
        }
        if s.starts_with("//") {
            continue;
        }
        let code = s.split(" //").next().unwrap_or(s);
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let level: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i)))
        .collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["main", "lib"].contains(&module.as_str())
            || file.file_name().is_some_and(|n| n == "tests.rs")
        {
            continue;
        }
        let Some(&from) = level.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read");
        for target in imports(&text) {
            let Some(&to) = level.get(target.as_str()) else {
                continue;
            };
            let allowed = to < from
                || target == module
                || SAME_LAYER.contains(&(module.as_str(), target.as_str()));
            if !allowed {
                wrong.push(format!("{}: `{module}` imports `{target}`", rel.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers of ARCHITECTURE.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_imports_and_skips_tests_and_comments() {
    let text = "use crate::store::Store;\n// crate::web in a comment\nfn f() { crate::clock::system_now(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::server;\n}\n";
    let found = imports(text);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["clock".to_string(), "store".to_string()]
    );
}
