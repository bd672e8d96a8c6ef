//! Developer commands for Throughline (`cargo xtask …`): the demo, the cost and cold-start
//! measurements, the local API agent. The local stack they run on is `throughline-localstack`.

pub mod agent;
pub mod coldstart;
pub mod costs;
pub mod demo;
pub mod throughput;
// The commands' own code names the local stack's modules as its own.
pub use throughline_localstack::{Result, workspace_root};
pub(crate) use throughline_localstack::{lambda, poller, providers, sign, stack, venv};

/// The build leaves out the test binaries of entry points and every crate's doc-test pass
/// (`test = false`, `doctest = false` in the manifests). That is right only while there is
/// nothing there to run: a test or a Rust doc example added there would silently never run,
/// so these checks fail instead.
#[cfg(test)]
mod skipped_targets {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            // An entry that cannot be read fails the check rather than leaving files unchecked.
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "target" && name != ".venv" && name != ".git" {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push(path);
            }
        }
    }

    fn sources() -> Vec<PathBuf> {
        let root = throughline_localstack::workspace_root();
        let mut files = Vec::new();
        for dir in ["shared", "functions", "tools", "xtask", "tests"] {
            rust_files(&root.join(dir), &mut files);
        }
        files
    }

    #[test]
    fn entry_points_without_test_binaries_hold_no_tests() {
        let entry_points: Vec<PathBuf> = sources()
            .into_iter()
            .filter(|p| p.ends_with("src/main.rs") || p.parent().is_some_and(|d| d.ends_with("src/bin")))
            .collect();
        assert!(entry_points.len() >= 10, "found {entry_points:?}");
        for path in entry_points {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("#[test]") && !text.contains("#[cfg(test)]") && !text.contains("#[tokio::test"),
                "{} has tests, but its binary is built with `test = false`: move them to the library",
                path.display()
            );
        }
    }

    #[test]
    fn no_crate_has_a_doc_example_its_skipped_doc_tests_would_not_run() {
        for path in sources() {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut inside = false;
            for line in text.lines() {
                let doc = line.trim_start();
                let Some(doc) = doc.strip_prefix("///").or_else(|| doc.strip_prefix("//!")) else {
                    continue;
                };
                let Some(tag) = doc.trim().strip_prefix("```") else {
                    continue;
                };
                if !inside {
                    // rustdoc runs an untagged or Rust-tagged block; data blocks (`json`) it leaves.
                    let tag = tag.trim();
                    assert!(
                        !(tag.is_empty() || tag == "rust" || tag.starts_with("rust,")),
                        "{} has a doc example, but doc tests are off (`doctest = false`): turn them on for its crate",
                        path.display()
                    );
                }
                inside = !inside;
            }
        }
    }
}
