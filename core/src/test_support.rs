//! Helpers for the core tests: locating and loading the golden fixtures.

use std::path::PathBuf;

/// Directory of the golden fixtures: `$PM_FIXTURES_DIR`, else `shared/fixtures` beside the repo.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PM_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Parses one fixture file (`name` like `"formatting.json"`), floats read exactly.
pub fn load_fixture(name: &str) -> serde_json::Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}
