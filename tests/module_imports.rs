//! The architecture rule "no module imports from a module that imports from it", checked on
//! the source text: every file under src/ is a module (`a/mod.rs` is `a`, `a/b.rs` is `a::b`);
//! a path `crate::a::b::Item`, `super::x` or `self::x` in a file is an import of the longest
//! module that path names. Declaring a submodule (`mod b;`) is not an import. The test fails
//! with every cycle it finds. Reads files only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → ["a", "b"]; `src/a/mod.rs` → ["a"]; `src/lib.rs` → [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a file names, resolved against `module` (crate::, super::, self::), as segment
/// lists. `super` inside an inline `mod name { ... }` block names the file's own module.
fn imports(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut inline_depth: Option<i64> = None;
    let mut depth: i64 = 0;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim_start();
        if inline_depth.is_none()
            && (t.starts_with("mod ") || t.starts_with("pub mod "))
            && t.trim_end().ends_with('{')
        {
            inline_depth = Some(depth);
        }
        for (i, _) in code.match_indices("::") {
            // The path this `::` belongs to starts at the first identifier char run before it.
            let head_start = code[..i]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |p| p + 1);
            let path = &code[head_start..];
            let end = path
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(path.len());
            let path = &path[..end];
            // Only resolve each path once: at its first `::`.
            if head_start + path.find("::").unwrap_or(usize::MAX) != i {
                continue;
            }
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let Some(first) = segs.first() else { continue };
            let base: Vec<String> = match *first {
                "crate" => Vec::new(),
                "self" => module.to_vec(),
                "super" => {
                    if inline_depth.is_some() {
                        module.to_vec()
                    } else {
                        module[..module.len().saturating_sub(1)].to_vec()
                    }
                }
                _ => continue,
            };
            let mut full = base;
            let mut rest = &segs[1..];
            while rest.first() == Some(&"super") {
                full.pop();
                rest = &rest[1..];
            }
            full.extend(rest.iter().map(|s| s.to_string()));
            out.push(full);
        }
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
        if inline_depth.is_some_and(|d| depth <= d) {
            inline_depth = None;
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_module_that_imports_from_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeMap<Vec<String>, PathBuf> = all
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read");
        for path in imports(&text, module) {
            // The longest prefix of the path that is a module file.
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains_key(p));
            if let Some(t) = target {
                if &t != module {
                    edges.entry(module.clone()).or_default().insert(t);
                }
            }
        }
    }
    assert!(
        edges.values().map(BTreeSet::len).sum::<usize>() > 40,
        "the scanner found too few imports to be trusted: {edges:?}"
    );
    // Every cycle, found by a depth-first search from each module.
    let name = |m: &Vec<String>| {
        if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        }
    };
    let mut cycles = BTreeSet::new();
    for start in modules.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut c: Vec<String> = path.iter().map(name).collect();
                    let min = c.iter().enumerate().min_by_key(|(_, n)| *n).map(|(i, _)| i);
                    c.rotate_left(min.unwrap_or(0));
                    cycles.insert(c.join(" -> "));
                } else if !path.contains(next) && next > start {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import from each other (each line a cycle):\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}
