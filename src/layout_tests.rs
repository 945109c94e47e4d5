//! The layout the code keeps: no import cycle between modules (at the top of the crate, or
//! between the sibling files of a folder), no source file over 600 lines, and every file opening
//! with a comment that says what it owns. Read from the sources themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its module path (`history/fast/skim.rs` → history, fast, skim).
fn modules() -> Vec<(Vec<String>, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.ends_with("main.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").with_extension("");
            let mut path: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if path.last().is_some_and(|l| l == "mod" || l == "lib") {
                path.pop();
            }
            (path, p)
        })
        .collect()
}

/// The modules a file refers to: `crate::a::b…` and `super::…` paths, cut to the longest prefix
/// that is a module.
fn references(me: &[String], text: &str, known: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let words = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_').to_string())
            .take_while(|w| !w.is_empty())
            .collect()
    };
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            out.insert(words(&rest[..end]));
        }
        for (i, _) in code.match_indices("super::") {
            if i >= 2 && &code[i - 2..i] == "::" {
                continue;
            }
            let rest = &code[i..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            let mut base: Vec<String> = me.to_vec();
            let mut tail: Vec<String> = Vec::new();
            for w in words(&rest[..end]) {
                if w == "super" && tail.is_empty() {
                    base.pop();
                } else {
                    tail.push(w);
                }
            }
            base.extend(tail);
            out.insert(base);
        }
    }
    out.into_iter()
        .filter_map(|p| (0..=p.len()).rev().map(|n| p[..n].to_vec()).find(|prefix| known.contains(prefix)))
        .filter(|p| p.as_slice() != me)
        .collect()
}

#[test]
fn no_import_cycles() {
    let mods = modules();
    let known: BTreeSet<Vec<String>> = mods.iter().map(|(m, _)| m.clone()).collect();
    // For each folder (module), the edges between its children that the files below them make.
    let mut graphs: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    for (me, file) in &mods {
        let text = std::fs::read_to_string(file).expect("read");
        for to in references(me, &text, &known) {
            let common = me.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // A module and its own parent or child may refer to each other (re-exports, shared
            // types); siblings below one folder may not go round in a circle.
            if common < me.len() && common < to.len() {
                graphs.entry(me[..common].to_vec()).or_default().insert((me[common].clone(), to[common].clone()));
            }
        }
    }
    for (folder, edges) in &graphs {
        let mut order: Vec<String> = Vec::new();
        let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
        let mut left: BTreeSet<&String> = nodes.clone();
        // Kahn: repeatedly take a module nothing left depends on.
        while let Some(&next) = left.iter().find(|n| !edges.iter().any(|(a, b)| a == **n && left.contains(b) && a != b))
        {
            left.remove(next);
            order.push(next.clone());
        }
        let cycle: Vec<String> = edges
            .iter()
            .filter(|(a, b)| left.contains(a) && left.contains(b))
            .map(|(a, b)| format!("{a} → {b}"))
            .collect();
        assert!(
            left.is_empty(),
            "import cycle among the modules of crate::{}: {}",
            folder.join("::"),
            cycle.join(", ")
        );
    }
    assert!(graphs.contains_key(&Vec::new()), "the top-level graph was read");
}

#[test]
fn small_files_that_say_what_they_own() {
    for (_, file) in modules() {
        let text = std::fs::read_to_string(&file).expect("read");
        let lines = text.lines().count();
        assert!(lines <= 600, "{} has {lines} lines: split it", file.display());
        assert!(text.starts_with("//!"), "{} does not open with a //! comment saying what it owns", file.display());
    }
}
