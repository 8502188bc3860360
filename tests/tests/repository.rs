//! The repository tests itself with nothing beside it: no tracked file may refer to a folder
//! outside the clone (a fresh `git clone` has no sibling folders), and everything the test
//! suites read from the tree is in it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tracked_files() -> Vec<PathBuf> {
    let out = Command::new("git").arg("-C").arg(root()).args(["ls-files", "-z"]).output().expect("run git ls-files");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<PathBuf> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| root().join(String::from_utf8_lossy(p).as_ref()))
        .collect();
    assert!(files.len() > 100, "git lists only {} files", files.len());
    files
}

/// `path` with its `..` resolved lexically; `None` when it climbs above `/`.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<std::path::Component> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            std::path::Component::CurDir => {}
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

/// Whether `path` stays inside the repository.
fn inside_repository(path: &Path) -> bool {
    match (lexical(path), lexical(&root())) {
        (Some(p), Some(r)) => p.starts_with(r),
        _ => false,
    }
}

#[test]
fn no_tracked_file_reads_a_folder_beside_the_repository() {
    // Built at run time so that this file does not match itself.
    let sibling = format!("../{}", "shared");
    let offenders: Vec<String> = tracked_files()
        .iter()
        .filter_map(|p| {
            let text = std::fs::read(p).ok()?;
            let text = String::from_utf8_lossy(&text);
            // A path that climbs to a `shared` folder inside the repository (a nested crate's path
            // to the workspace's crate) is the repository's own; one that leaves it is not.
            let dir = p.parent()?;
            let line = text.lines().position(|l| {
                l.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '(' || c == ')')
                    .filter(|t| t.contains(&sibling))
                    .any(|t| !inside_repository(&dir.join(&t[t.find("../").unwrap_or(0)..])))
            })?;
            Some(format!("{}:{}", p.strip_prefix(root()).unwrap_or(p).display(), line + 1))
        })
        .collect();
    assert!(offenders.is_empty(), "these files refer to {sibling}, which a fresh clone does not have: {offenders:?}");
}

#[test]
fn what_the_suites_read_is_in_the_repository() {
    let tree = root().join("tests");
    for file in ["golden/README.md", "golden/create.success.json", "fixtures/core_errors.json", "tools/netns-run"] {
        assert!(tree.join(file).is_file(), "tests/{file} is missing");
    }
    // Every golden file the conformance fixture names exists.
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tree.join("fixtures/core_errors.json")).unwrap()).unwrap();
    for case in fixture.as_array().unwrap() {
        for key in ["golden", "http_golden"] {
            if let Some(name) = case[key].as_str() {
                assert!(tree.join("golden").join(name).is_file(), "tests/golden/{name} is missing");
            }
        }
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tree.join("tools/netns-run")).unwrap().permissions(),
    );
    assert!(mode & 0o111 != 0, "tests/tools/netns-run is not executable");
}
